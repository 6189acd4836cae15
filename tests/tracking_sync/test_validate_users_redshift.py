"""Scope "users" and the rows compared by id through the Redshift driver: what a
change-capture run's validation sends runs on both engines.

The source is a PostgreSQL database of this module's own (psycopg 3, as PostgresHook
gives it); the target is a schema of each test's own behind the Redshift stand-in,
created by the pipeline's Redshift DDL and read through redshift_connector (extended
protocol, DECLARE ... CURSOR, one statement per execute: as on Redshift).
"""

from __future__ import annotations

import io
from contextlib import closing
from datetime import UTC, datetime

import psycopg
import psycopg2
import pytest
import redshift_connector

from devstack import demo_data
from devstack.stack import create_source_schema
from tracking_sync.core.tables import ACTION, ACTION_TYPE
from tracking_sync.load.schema import run_ddl, target_tables_statements
from tracking_sync.validate.placed_rows import CHANGED_ROWS_CHECK, compare_rows_by_id
from tracking_sync.validate.run import run_validation

pytestmark = pytest.mark.integration

DAY = datetime(2025, 3, 10, tzinfo=UTC)
END_OF_DATA = datetime(2026, 1, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def source_dsn(stack):
    """Demo data, small: the stand-in emulates Redshift's EXTRACT with SQL functions."""
    dsn = stack.postgres.create_database("users_scope_redshift_test")
    create_source_schema(dsn)
    demo_data.generate(dsn, rows=2_000, seed=3, users=50)
    return dsn


@pytest.fixture
def target(stack, source_dsn, target_schema_of_test):
    """The source's rows in a target schema created by the Redshift DDL; yields the schema
    and a connection to the stand-in's backend (to damage the target behind its back)."""
    schema = target_schema_of_test
    with closing(redshift_connector.connect(**stack.redshift.connect_kwargs())) as conn:
        run_ddl(conn, target_tables_statements(schema))
    backend = psycopg2.connect(stack.redshift.backend_dsn())
    backend.autocommit = True
    try:
        with (
            closing(psycopg2.connect(source_dsn)) as source,
            source.cursor() as out,
            backend.cursor() as into,
        ):
            out.execute("set timezone to 'UTC'")
            into.execute("set timezone to 'UTC'")
            for table in (ACTION_TYPE, ACTION):
                columns = ", ".join(table.column_names)
                rows = io.StringIO()
                out.copy_expert(f"copy (select {columns} from {table.name}) to stdout", rows)
                rows.seek(0)
                into.copy_expert(f"copy {schema}.{table.name} ({columns}) from stdin", rows)
        yield schema, backend
    finally:
        backend.close()


def _users(source_dsn, count):
    with psycopg.connect(source_dsn) as source:
        rows = source.execute(
            "select user_profile_id from action group by user_profile_id "
            "having count(distinct session_id) > 2 order by user_profile_id limit %s",
            (count,),
        ).fetchall()
    return [user for (user,) in rows]


def _move_last_action_of_first_session(backend, schema, user) -> int:
    with backend.cursor() as cursor:
        cursor.execute(
            f"""
            update {schema}.action set action_time = action_time + interval '1 second'
            where id = (
                select id from {schema}.action
                where session_id = (
                    select session_id from {schema}.action where user_profile_id = %s
                    order by action_time, id limit 1)
                order by action_time desc, id limit 1)
            returning id
            """,
            (user,),
        )
        ((row_id,),) = cursor.fetchall()
    return row_id


def _validate(stack, source_dsn, schema, users, **options):
    with (
        psycopg.connect(source_dsn) as source,
        closing(redshift_connector.connect(**stack.redshift.connect_kwargs())) as target,
    ):
        return run_validation(
            source,
            target,
            target_schema=schema,
            window_start=DAY,
            window_end=END_OF_DATA,
            scope="users",
            users=users,
            **options,
        )


def test_the_users_scope_runs_on_both_engines(stack, source_dsn, target):
    schema, backend = target
    listed, other = _users(source_dsn, 3), _users(source_dsn, 4)[3]
    assert _validate(stack, source_dsn, schema, listed).passed

    moved = _move_last_action_of_first_session(backend, schema, listed[2])
    _move_last_action_of_first_session(backend, schema, other)
    report = _validate(stack, source_dsn, schema, listed, users_per_statement=2)
    assert not report.passed, report.format_table()
    totals = next(c for c in report.checks if c.name == "per_user_session_totals")
    assert [d.key for d in totals.top_differences if d.column == "total_time_spent"] == [[listed[2]]]
    assert report.rows.row_ids == [moved]  # the unlisted user's row is not in the region
    assert f"user_profile_id {listed[2]}" in report.rows.region and len(report.days_to_backfill) == 1

    assert _validate(stack, source_dsn, schema, listed[:2]).passed  # the damaged users are not listed
    empty = _validate(stack, source_dsn, schema, [])
    assert empty.passed and all(c.source_rows == c.target_rows for c in empty.checks)


def test_changed_rows_by_id_through_the_redshift_driver(stack, source_dsn, target):
    schema, backend = target
    with psycopg.connect(source_dsn) as source:
        ids = [row_id for (row_id,) in source.execute("select id from action order by id limit 8")]
    with backend.cursor() as cursor:
        cursor.execute(f"update {schema}.action set is_async = not is_async where id = {ids[6]}")
        cursor.execute(f"delete from {schema}.action where id = {ids[1]}")
    with (
        psycopg.connect(source_dsn) as source,
        closing(redshift_connector.connect(**stack.redshift.connect_kwargs())) as target_conn,
    ):
        result = compare_rows_by_id(
            source, target_conn, schema, ids, name=CHANGED_ROWS_CHECK, ids_per_query=3
        )
    assert (result.matching, result.differing, result.missing_in_target) == (6, 1, 1)
    assert [(d.key, d.column) for d in result.top_differences] == [([ids[6]], "is_async")]
    assert result.missing_in_target_sample == [[ids[1]]]


def _work_mem(conn, setting="work_mem") -> str:
    cursor = conn.cursor()
    cursor.execute(f"show {setting}")
    ((value,),) = cursor.fetchall()
    cursor.close()
    conn.rollback()
    return value


def test_the_shared_pass_tunes_the_stand_ins_planner_as_the_sources(stack, source_dsn, target):
    """The stand-in's backend is PostgreSQL: without work_mem the pass sorted the whole
    table on disk there (bench_dag: 3x the reference query at 10 M rows). The settings are
    for the passes only: the checks then read a few thousand rows."""
    from tracking_sync.validate.parity import load_checks
    from tracking_sync.validate.shared_pass import base_work_mem, shared_passes
    from tracking_sync.validate.streams import CheckWindow

    schema, _ = target
    window = CheckWindow("public", schema, DAY, END_OF_DATA, "full")
    assert base_work_mem("action_user_totals") == "1GB" and base_work_mem("action_days") is None
    with (
        psycopg.connect(source_dsn) as source,
        closing(redshift_connector.connect(**stack.redshift.connect_kwargs())) as target_conn,
    ):
        default = _work_mem(target_conn)
        with shared_passes(load_checks(), source, target_conn, window) as bases:
            assert bases.tuned == {"source": True, "target": True}
            # no sort nor large hash after the passes: the checks' ORDER BY sorts as usual
            assert _work_mem(target_conn, "enable_sort") == _work_mem(source, "enable_sort") == "on"
            assert _work_mem(target_conn) == _work_mem(source) == default != "1GB"
        assert _work_mem(target_conn) == _work_mem(source) == default
