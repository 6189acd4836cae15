"""A full refresh swaps its loaded staging table in as the target, in one transaction: each row
is written once, late-binding views and grants survive it, a view bound to the table makes it
copy instead, and a publish killed in the middle of the swap leaves the old table as it was.

publish_action runs on the real driver against the Redshift stand-in; the fault is a real
one (the publish's backend session terminated while it waits, inside the swap, on a lock the
test holds), as in test_killed_runs.
"""

from __future__ import annotations

import threading
from contextlib import closing

import psycopg2
import pytest

from tests.faults.utils import activity, lock_waiters, wait_until, watch
from tests.pipeline_helpers import fetch_rows

pytestmark = pytest.mark.integration

SCHEMA = "faults_swap"
STAGING = "action_staging_full_refresh"
VIEW = "recent_queries"
READER, GROUP = "swap_test_reader", "swap_test_readers"
ROWS = 48
STAGING_COLUMNS = (
    "id, user_profile_id, session_id, action_type_id, action_time, course_id, exercise_id, "
    "is_exercise_checked, is_async, query, query_is_marker"
)
# query as the COPY loads it (the literal text \N arrives as NULL, flagged) and as it must end up
STAGED_QUERIES = {1: (None, False), 2: ("", False), 3: (None, True), 4: ("select 1", False)}
EXPECTED_QUERIES = {1: None, 2: "", 3: "\\N", 4: "select 1"}


def full_refresh() -> object:
    from tracking_sync.core.plan import RunSlice

    return RunSlice(True)


def run_statements(connection, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    connection.commit()


@pytest.fixture
def swap_target(stack_env, target, pipeline_target, backend_dsn):
    """`action` with ROWS old rows (query 'old'), a late-binding view on it, SELECT granted to a
    user and a group, and a full refresh's staging table loaded with 4 new rows."""
    from tracking_sync.load.schema import action_staging_statements, target_tables_statements

    run_statements(target, [f"drop schema if exists {SCHEMA} cascade"])
    for create in (f"create user {READER}", f"create group {GROUP}"):
        try:
            run_statements(target, [create])
        except psycopg2.Error:
            target.rollback()  # left by an earlier run of this module
    run_statements(pipeline_target, target_tables_statements(SCHEMA))
    # generate_series over a user table is leader-node only on Redshift (the stand-in refuses
    # it, tests/devstack/redshift/test_redshift_refusals.py): the old rows go in through the backend
    with closing(psycopg2.connect(backend_dsn)) as backend:
        run_statements(
            backend,
            [
                f"insert into {SCHEMA}.action (id, user_profile_id, session_id, action_type_id, action_time, "
                "is_async, query) select g, g % 5, 's' || (g / 6), 1, "
                "timestamptz '2025-03-01 00:30:00+00' + g * interval '1 hour', false, 'old' "
                f"from generate_series(100, {100 + ROWS - 1}) as g"
            ],
        )
    statements = []
    statements.append(
        f"create view {SCHEMA}.{VIEW} as select id, query from {SCHEMA}.action with no schema binding"
    )
    statements.append(f"grant select on {SCHEMA}.action to {READER}")
    statements.append(f"grant select on {SCHEMA}.action to group {GROUP}")
    statements += action_staging_statements(SCHEMA, STAGING)
    for row_id, (query, marker) in STAGED_QUERIES.items():
        literal = "null" if query is None else f"'{query}'"
        statements.append(
            f"insert into {SCHEMA}.{STAGING} ({STAGING_COLUMNS}) values ({row_id}, 7, 's', 1, "
            f"'2025-03-02 10:00:00+00', null, null, null, false, {literal}, {str(marker).lower()})"
        )
    run_statements(pipeline_target, statements)  # the view and grants: the table's owner's
    yield SCHEMA
    run_statements(target, [f"drop schema if exists {SCHEMA} cascade"])


def table_oid(connection) -> int:
    return fetch_rows(connection, f"select to_regclass('{SCHEMA}.action')::oid")[0][0]


def grants(connection) -> tuple[bool, bool]:
    """(the user may SELECT, the group's grant is in the table's ACL)."""
    (user_may,) = fetch_rows(
        connection, f"select has_table_privilege('{READER}', '{SCHEMA}.action', 'select')"
    )[0]
    (acl,) = fetch_rows(
        connection,
        f"select array_to_string(relacl, '|') from pg_class where oid = '{SCHEMA}.action'::regclass",
    )[0]
    return user_may, f"{GROUP}=r/" in acl


def publish():
    from tracking_sync.connections import redshift_connection
    from tracking_sync.load.publish import publish_action

    with closing(redshift_connection()) as connection:
        return publish_action(connection, SCHEMA, STAGING, full_refresh())


def test_a_full_refresh_swaps_the_loaded_table_in_and_views_and_grants_survive(swap_target, target):
    before = table_oid(target)
    result = publish()
    target.rollback()
    assert result.inserted == len(STAGED_QUERIES)
    assert table_oid(target) != before, "the loaded table was swapped in, not copied into the old one"
    rows = dict(fetch_rows(target, f"select id, query from {SCHEMA}.action order by id"))
    assert rows == EXPECTED_QUERIES, "NULL, '' and the text \\N each kept apart"
    assert dict(fetch_rows(target, f"select id, query from {SCHEMA}.{VIEW}")) == EXPECTED_QUERIES, (
        "the late-binding view reads the new table"
    )
    assert grants(target) == (True, True), "the user's and the group's SELECT were granted again"
    (left,) = fetch_rows(
        target,
        "select count(*) from pg_tables where schemaname = %s and tablename <> 'action' "
        "and tablename <> 'action_type'",
        (SCHEMA,),
    )[0]
    assert left == 0, "neither the staging table nor the replaced table is left"
    (columns,) = fetch_rows(
        target,
        "select string_agg(attname, ',' order by attnum) from pg_attribute "
        f"where attrelid = '{SCHEMA}.action'::regclass and attnum > 0 and not attisdropped",
    )[0]
    assert columns == STAGING_COLUMNS.replace(" ", "").removesuffix(",query_is_marker")


def test_a_view_bound_to_the_target_makes_the_full_refresh_copy_instead(swap_target, target, caplog):
    run_statements(target, [f"create view {SCHEMA}.bound as select id from {SCHEMA}.action"])
    before = table_oid(target)
    result = publish()
    target.rollback()
    assert result.inserted == len(STAGED_QUERIES)
    assert table_oid(target) == before, "copied into the same table: the bound view still reads it"
    assert dict(fetch_rows(target, f"select id, query from {SCHEMA}.action")) == EXPECTED_QUERIES
    assert sorted(i for (i,) in fetch_rows(target, f"select id from {SCHEMA}.bound")) == [1, 2, 3, 4]
    assert grants(target) == (True, True)
    assert "copying the rows into faults_swap.action instead of swapping" in caplog.text
    assert "WITH NO SCHEMA BINDING" in caplog.text


def test_a_publish_killed_in_the_middle_of_the_swap_leaves_the_old_table(swap_target, target, backend_dsn):
    """The swap has renamed the old table away and waits to alter the staging table (the test
    holds a lock on it); its session is terminated there: everything rolls back."""
    old_rows = fetch_rows(target, f"select id, query from {SCHEMA}.action order by id")
    before = table_oid(target)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = publish()
        except BaseException as error:  # reported by the test
            outcome["error"] = error

    with closing(psycopg2.connect(backend_dsn)) as holder, closing(watch(backend_dsn)) as seen:
        with holder.cursor() as cursor:
            cursor.execute(f"lock table {SCHEMA}.{STAGING} in access share mode")
        publisher = threading.Thread(target=run, daemon=True)
        publisher.start()
        try:
            ((pid, query),) = wait_until(
                lambda: lock_waiters(seen, f"alter table {SCHEMA}.{STAGING}%"),
                "the swap to wait on the staging table, the old table renamed away",
                on_timeout=lambda: activity(seen),
            )
            (renamed,) = fetch_rows(
                seen,
                "select count(*) from pg_locks where pid = %s and relation = %s::regclass",
                (pid, before),
            )[0]
            assert renamed, "the waiting swap holds the old table (renamed in its open transaction)"
            fetch_rows(seen, "select pg_terminate_backend(%s)", (pid,))
        finally:
            holder.rollback()
        publisher.join(timeout=60)
    assert not publisher.is_alive()
    assert "error" in outcome, "the publish saw its session end"
    target.rollback()
    assert table_oid(target) == before, "the old table is the target still"
    assert fetch_rows(target, f"select id, query from {SCHEMA}.action order by id") == old_rows
    assert len(fetch_rows(target, f"select * from {SCHEMA}.{VIEW}")) == ROWS
    assert grants(target) == (True, True)
    (staged,) = fetch_rows(target, f"select count(query_is_marker) from {SCHEMA}.{STAGING}")[0]
    assert staged == len(STAGED_QUERIES), "the staging table is whole, its flag column back"
    result = publish()  # and the rerun swaps it in
    target.rollback()
    assert result.inserted == len(STAGED_QUERIES)
    assert dict(fetch_rows(target, f"select id, query from {SCHEMA}.{VIEW}")) == EXPECTED_QUERIES
