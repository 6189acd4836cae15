"""Transactions as Redshift runs them: every one SERIALIZABLE, conflicts abort with error
1023, LOCK serializes writers — through two real redshift_connector sessions."""

from __future__ import annotations

import threading
import time

import pytest

pytestmark = pytest.mark.integration


def connect(redshift):
    import redshift_connector

    return redshift_connector.connect(**redshift.connect_kwargs())


def backend_pid(conn) -> int:
    cur = conn.cursor()
    cur.execute("select pg_backend_pid()")
    return cur.fetchone()[0]


def wait_until_waiting_for_a_lock(redshift, pid: int, timeout: float = 20) -> None:
    """Until session `pid` waits for a lock another transaction holds."""
    import psycopg2

    conn = psycopg2.connect(redshift.dsn())
    conn.autocommit = True
    try:
        deadline = time.monotonic() + timeout
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("select wait_event_type from pg_stat_activity where pid = %s", (pid,))
                if cur.fetchone() == ("Lock",):
                    return
                time.sleep(0.05)
    finally:
        conn.close()
    raise AssertionError(f"session {pid} never waited for a lock")


def table_rows(redshift, sql: str) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(redshift.dsn())
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def replace_rows(conn, table: str, value: str, lock: bool) -> None:
    """The pipeline's publish step: delete the slice's rows, insert them anew, in one transaction."""
    cur = conn.cursor()
    if lock:
        cur.execute(f"lock {table}")
    cur.execute(f"delete from {table} where id in (1, 2)")
    cur.execute(f"insert into {table} values (1, %s), (2, %s)", (value, value))


@pytest.fixture
def tracking_table(redshift, schema):
    table = f"{schema}.tracking_table"
    conn = connect(redshift)
    try:
        cur = conn.cursor()
        cur.execute(f"create table {table} (id int, v varchar(10))")
        cur.execute(f"insert into {table} values (1, 'old'), (2, 'old')")
        conn.commit()
    finally:
        conn.close()
    return table


def race_two_replacements(redshift, table: str, lock: bool) -> tuple[object, int]:
    """Two sessions replace the same rows; the second starts while the first holds them.

    The first commits once the second waits for a lock; returns how the second
    ended ("committed" or its exception) and its backend pid.
    """
    first, second = connect(redshift), connect(redshift)
    outcome: list = []

    def second_replaces_then_commits() -> None:
        try:
            replace_rows(second, table, "second", lock=lock)
            second.commit()
            outcome.append("committed")
        except Exception as exc:  # reported by the test's assertions
            outcome.append(exc)
            second.rollback()

    try:
        second_pid = backend_pid(second)
        second.commit()
        replace_rows(first, table, "first", lock=lock)
        thread = threading.Thread(target=second_replaces_then_commits)
        thread.start()
        wait_until_waiting_for_a_lock(redshift, second_pid)
        assert outcome == []  # the second waits for the first
        first.commit()
        thread.join(timeout=30)
    finally:
        first.close()
        second.close()
    assert len(outcome) == 1, outcome
    return outcome[0], second_pid


# docs: c_serial_isolation — Redshift runs every transaction SERIALIZABLE
def test_sessions_are_serializable(rs_conn, pg_conn):
    cur = rs_conn.cursor()
    cur.execute("show transaction_isolation")
    assert cur.fetchone() == ["serializable"]
    with pg_conn.cursor() as pcur:
        pcur.execute("show default_transaction_isolation")
        assert pcur.fetchone() == ("serializable",)


# docs: c_serial_isolation-serializable-isolation-troubleshooting (ERROR: 1023 DETAIL:
# Serializable isolation violation on table - <id>, transactions forming the cycle
# are: ... (pid:<pid>)) — two transactions replacing the same rows: the second to
# touch them fails, and no row is duplicated
def test_concurrent_replacements_of_the_same_rows_fail_one_with_error_1023(redshift, tracking_table):
    import redshift_connector

    outcome, second_pid = race_two_replacements(redshift, tracking_table, lock=False)
    assert isinstance(outcome, redshift_connector.ProgrammingError), outcome
    error = outcome.args[0]
    table_id = table_rows(redshift, f"select '{tracking_table}'::regclass::oid::int")[0][0]
    assert (error["C"], error["M"]) == ("XX000", "1023")
    assert error["D"].startswith(f"Serializable isolation violation on table - {table_id}, ")
    assert error["D"].endswith(f"(pid:{second_pid})")
    assert table_rows(redshift, f"select id, v from {tracking_table} order by id") == [
        (1, "first"),
        (2, "first"),
    ]


# docs: r_LOCK, redshift-serializable-isolation (force serialization by locking the
# tables) — with LOCK first, the second transaction waits for the first, then both succeed
def test_lock_first_serializes_the_replacements(redshift, tracking_table):
    outcome, _ = race_two_replacements(redshift, tracking_table, lock=True)
    assert outcome == "committed"
    assert table_rows(redshift, f"select id, v from {tracking_table} order by id") == [
        (1, "second"),
        (2, "second"),
    ]


# docs: r_LOCK — "only meaningful inside a transaction block": outside one it runs and
# holds nothing (PostgreSQL alone refuses it); a missing table is still an error
def test_lock_outside_a_transaction_block_succeeds(redshift, tracking_table):
    import psycopg2
    import redshift_connector

    conn = psycopg2.connect(redshift.dsn())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f"lock table {tracking_table}")
            with pytest.raises(psycopg2.errors.UndefinedTable):
                cur.execute(f"lock {tracking_table}_missing")
    finally:
        conn.close()
    rs = connect(redshift)
    try:
        rs.autocommit = True
        rs.cursor().execute(f"lock {tracking_table}")
        with pytest.raises(redshift_connector.ProgrammingError, match="does not exist"):
            rs.cursor().execute(f"lock {tracking_table}_missing")
    finally:
        rs.close()


# docs: c_serial_isolation-serializable-isolation-troubleshooting — the guide's own
# example: each session reads the table the other writes; no serial order gives the
# same result, so one transaction fails with error 1023
def test_the_documented_cross_reference_fails_one_transaction_with_error_1023(redshift, schema):
    import redshift_connector

    setup = connect(redshift)
    try:
        setup.cursor().execute(f"create table {schema}.tab1 (id int)")
        setup.cursor().execute(f"create table {schema}.tab2 (id int)")
        setup.commit()
    finally:
        setup.close()
    session1, session2 = connect(redshift), connect(redshift)
    try:
        session1.cursor().execute(f"select * from {schema}.tab1")
        session1.cursor().execute(f"insert into {schema}.tab2 values (1)")
        session2.cursor().execute(f"insert into {schema}.tab1 values (1)")
        with pytest.raises(redshift_connector.ProgrammingError) as failure:
            session2.cursor().execute(f"select * from {schema}.tab2")
            session1.commit()
            session2.commit()
        error = failure.value.args[0]
        assert (error["C"], error["M"]) == ("XX000", "1023")
        table_ids = table_rows(
            redshift, f"select '{schema}.tab1'::regclass::oid::int, '{schema}.tab2'::regclass::oid::int"
        )[0]
        # PostgreSQL aborts the transaction that commits first (Redshift: the last
        # operation); the table named is the one that transaction wrote
        assert any(
            error["D"].startswith(f"Serializable isolation violation on table - {table_id}, ")
            for table_id in table_ids
        ), error
    finally:
        session1.close()
        session2.close()
