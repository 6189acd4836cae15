"""The stand-in as a server: what the drivers see at connect time, cancel, concurrency,
start and stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from devstack.net import port_is_open, wait_for_port

pytestmark = pytest.mark.integration


# docs: c_redshift-and-postgres-sql (Redshift is based on PostgreSQL 8.0.2) — the
# driver parses server_version; both clients connect unchanged
def test_both_drivers_connect_and_see_server_version_8_0_2(rs_conn, pg_conn):
    assert (b"server_version", b"8.0.2") in rs_conn.parameter_statuses
    cur = rs_conn.cursor()
    cur.execute("select %s::int + 1, %s", (41, "text"))
    assert cur.fetchall() == ([42, "text"],)
    assert pg_conn.server_version == 80002
    with pg_conn.cursor() as pcur:
        pcur.execute("select 1; select 2")  # the simple protocol takes several statements
        assert pcur.fetchall() == [(2,)]


# docs: r_BEGIN, r_ROLLBACK — transactions behave as usual
def test_transactions_commit_and_roll_back(rs_conn, redshift, schema):
    import redshift_connector

    cur = rs_conn.cursor()
    cur.execute(f"create table {schema}.t (id int)")
    rs_conn.commit()
    cur.execute(f"insert into {schema}.t values (1)")
    rs_conn.rollback()
    cur.execute(f"insert into {schema}.t values (2)")
    rs_conn.commit()
    other = redshift_connector.connect(**redshift.connect_kwargs())
    try:
        ocur = other.cursor()
        ocur.execute(f"select id from {schema}.t")
        assert ocur.fetchall() == ([2],)
    finally:
        other.close()


# docs: c_redshift-and-postgres-sql — one execute() holds one statement in the
# driver's extended protocol, as on Redshift
def test_several_statements_in_one_driver_execute_fail(rs_conn):
    import redshift_connector

    with pytest.raises(redshift_connector.ProgrammingError, match="multiple commands"):
        rs_conn.cursor().execute("select 1; select 2")
    rs_conn.rollback()


# docs: PG_CANCEL_BACKEND — a client's cancel request stops its running query
def test_cancel_request_reaches_the_backend(pg_conn):
    import psycopg2

    timer = threading.Timer(0.5, pg_conn.cancel)
    timer.start()
    started = time.monotonic()
    with pytest.raises(psycopg2.errors.QueryCanceled):
        pg_conn.cursor().execute("select pg_sleep(30)")
    assert time.monotonic() - started < 10
    pg_conn.rollback()
    with pg_conn.cursor() as cur:  # the session is usable afterwards
        cur.execute("select 1")
        assert cur.fetchone() == (1,)


# docs: concurrency-scaling — many sessions at once, each served while others wait
@pytest.mark.perf
def test_many_concurrent_sessions(redshift):
    import redshift_connector

    sessions = 40
    results: list[object] = []
    barrier = threading.Barrier(sessions)

    def client(n: int) -> None:
        try:
            conn = redshift_connector.connect(**redshift.connect_kwargs())
            try:
                cur = conn.cursor()
                barrier.wait(timeout=30)
                cur.execute("select %s::int, pg_sleep(1)", (n,))
                results.append(cur.fetchone()[0])
            finally:
                conn.close()
        except Exception as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(sessions)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    elapsed = time.monotonic() - started
    assert sorted(results, key=str) == sorted(range(sessions), key=str)
    assert elapsed < 15  # 40 one-second queries ran side by side, not one after another


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is a dead process not yet reaped
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


# the "starts in a few seconds; stops cleanly": no orphan process, port closed
def test_start_and_stop_leave_nothing_behind(stack):
    import redshift_connector

    from devstack.redshift import LocalRedshift

    started = time.monotonic()
    local = LocalRedshift(backend=stack.redshift_backend, s3_endpoint_url=stack.s3.endpoint_url).start()
    assert time.monotonic() - started < 10
    pid, port = local.pid, local.port
    conn = redshift_connector.connect(**local.connect_kwargs())
    conn.cursor().execute("select 1")
    local.stop()
    assert not _pid_alive(pid)
    assert not port_is_open("127.0.0.1", port)
    conn.close()


# the "a python -m ... entry point": standalone, prints how to connect,
# stops on SIGINT
def test_standalone_entry_point(stack, tmp_path):
    import redshift_connector

    from devstack.net import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.redshift",
            "--port",
            str(port),
            "--backend-dsn",
            stack.redshift_backend.dsn(),
            "--s3-endpoint-url",
            stack.s3.endpoint_url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=20)
        conn = redshift_connector.connect(
            host="127.0.0.1",
            port=port,
            user=stack.redshift_backend.user,
            password=stack.redshift_backend.password,
            database="dev",
            ssl=False,
        )
        conn.cursor().execute("select getdate()")
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert f"127.0.0.1:{port}" in output and "AIRFLOW_CONN_REDSHIFT_DEFAULT" in output
    assert not port_is_open("127.0.0.1", port)


# the "AIRFLOW_CONN_REDSHIFT_DEFAULT points at the stand-in"
def test_env_gives_an_airflow_redshift_connection(redshift, stack_env):
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    hook = RedshiftSQLHook()
    assert hook.get_conn().__class__.__module__.startswith("redshift_connector")
    assert hook.get_first("select extract(year from timestamp '2024-05-06 07:08:09')") == [2024]


# Starting the stand-in must not be flaky: two stand-ins installing the compat
# catalog into one backend database at once raced ("tuple concurrently updated",
# duplicate pg_type key) until the install ran under an advisory lock.
def test_concurrent_compat_installs_into_one_database_all_succeed(stack):
    import uuid

    from devstack.redshift import install_compat_catalog

    database = f"compat_{uuid.uuid4().hex[:8]}"
    stack.redshift_backend.create_database(database)
    errors: list[str] = []

    def install() -> None:
        try:
            install_compat_catalog(stack.redshift_backend.dsn(database))
        except Exception as exc:  # collected: a thread's exception would be lost
            errors.append(str(exc).splitlines()[0])

    try:
        for _ in range(3):  # a fresh database first (CREATE TABLE race), then refreshes
            threads = [threading.Thread(target=install) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert errors == []
    finally:
        stack.redshift_backend.execute(f"drop database {database} with (force)")


# A parameter named after a keyword PostgreSQL reserves in that place (e.g.
# `charindex(substring text, ...)`) is a syntax error that aborts the whole install.
def test_compat_function_parameters_are_not_reserved_words(stack):
    import re

    import psycopg2

    from devstack.redshift import compat_sql

    conn = psycopg2.connect(stack.redshift_backend.dsn())
    try:
        with conn.cursor() as cur:
            # param_name accepts unreserved and type/function-name keywords only
            cur.execute("select word from pg_get_keywords() where catcode in ('C', 'R')")
            reserved = {row[0] for row in cur.fetchall()}
    finally:
        conn.close()
    headers = re.findall(
        r"create or replace function\s+[\w.]+\s*\(([^)]*)\)", compat_sql(), flags=re.IGNORECASE
    )
    names = {arg.split()[0].lower() for header in headers for arg in header.split(",") if arg.strip()}
    assert names and "part" in names
    assert names & reserved == set()
