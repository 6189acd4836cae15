"""Two publishes of the same target at once (an overlapping run, a second deployment, a manual
CLI run) never leave a row twice: the publish locks the target first, so the second waits.

Without that lock the stand-in, SERIALIZABLE as Redshift, aborts one of them with Redshift's
error 1023: the second test shows what a publish missing its LOCK would meet, so these tests
would catch the lock being dropped.
"""

from __future__ import annotations

import threading
from contextlib import closing
from datetime import UTC, datetime

import psycopg2
import pytest

from tests.faults.utils import activity, lock_waiters, wait_until, watch
from tests.pipeline_helpers import fetch_rows

pytestmark = pytest.mark.integration

SCHEMA = "faults_publish"
ROWS = 72  # one an hour over 2025-03-01..03-03
FULL, DAY = "action_staging_full_refresh", "action_staging_20250302t000000_20250303t000000"
STAGING_COLUMNS = (
    "id, user_profile_id, session_id, action_type_id, action_time, course_id, exercise_id, "
    "is_exercise_checked, is_async, query, query_is_marker"
)


def the_day() -> object:
    from tracking_sync.core.plan import RunSlice

    return RunSlice(False, datetime(2025, 3, 2, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC))


def full_refresh() -> object:
    from tracking_sync.core.plan import RunSlice

    return RunSlice(True)


def run_statements(connection, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    connection.commit()


@pytest.fixture
def publish_target(stack_env, target, pipeline_target, backend_dsn):
    """A target schema of its own: `action` with ROWS rows, and two filled staging tables, one of
    a full refresh (every row, query 'full') and one of 2025-03-02 (its 24 rows, query 'day')."""
    from tracking_sync.load.schema import action_staging_statements, target_tables_statements

    run_statements(pipeline_target, target_tables_statements(SCHEMA))
    # generate_series over a user table is leader-node only on Redshift (the stand-in refuses
    # it, tests/devstack/redshift/test_redshift_refusals.py): the old rows go in through the backend
    with closing(psycopg2.connect(backend_dsn)) as backend:
        run_statements(
            backend,
            [
                f"insert into {SCHEMA}.action (id, user_profile_id, session_id, action_type_id, action_time, "
                "is_async, query) select g, g % 5, 's' || (g / 6), 1, "
                f"timestamptz '2025-03-01 00:30:00+00' + g * interval '1 hour', false, 'old' "
                f"from generate_series(0, {ROWS - 1}) as g"
            ],
        )
    statements = []
    for staging, query, where in ((FULL, "full", "true"), (DAY, "day", "action_time::date = '2025-03-02'")):
        statements += action_staging_statements(SCHEMA, staging)
        statements.append(
            f"insert into {SCHEMA}.{staging} ({STAGING_COLUMNS}) select id, user_profile_id, session_id, "
            f"action_type_id, action_time, course_id, exercise_id, is_exercise_checked, is_async, "
            f"'{query}', false from {SCHEMA}.action where {where}"
        )
    run_statements(pipeline_target, statements)
    yield SCHEMA
    run_statements(target, [f"drop schema if exists {SCHEMA} cascade"])


def duplicates(target) -> list[tuple]:
    return fetch_rows(target, f"select id, count(*) from {SCHEMA}.action group by id having count(*) > 1")


class Publish(threading.Thread):
    """One publish_action on a connection of its own (as the replace_action_rows task opens one)."""

    def __init__(self, staging: str, run_slice) -> None:
        super().__init__(daemon=True)
        self.staging, self.run_slice = staging, run_slice
        self.error: BaseException | None = None
        self.inserted: int | None = None

    def run(self) -> None:
        from tracking_sync.connections import redshift_connection
        from tracking_sync.load.publish import publish_action

        try:
            with closing(redshift_connection()) as connection:
                self.inserted = publish_action(connection, SCHEMA, self.staging, self.run_slice).inserted
        except BaseException as error:  # reported by the test
            self.error = error


def test_overlapping_publishes_wait_on_the_lock_and_leave_no_duplicate(
    publish_target, stack, target, backend_dsn
):
    publishes = [Publish(FULL, full_refresh()), Publish(DAY, the_day())]
    with closing(psycopg2.connect(stack.redshift.dsn())) as holder, closing(watch(backend_dsn)) as seen:
        try:
            with holder.cursor() as cursor:  # an open transaction holding the target's lock
                cursor.execute(f"lock {SCHEMA}.action")
            for publish in publishes:
                publish.start()
            wait_until(
                lambda: len(lock_waiters(seen, f"lock%{SCHEMA}.action%")) == 2,
                "both publishes to wait on the target's LOCK",
                on_timeout=lambda: activity(seen),
            )
        finally:
            holder.rollback()  # both go, one after the other
        for publish in publishes:
            publish.join(timeout=60)
            assert not publish.is_alive(), "a publish still waits after the lock was released"
    assert [p.error for p in publishes] == [None, None], "the second publish waits, it does not fail"
    assert [p.inserted for p in publishes] == [ROWS, 24]
    assert duplicates(target) == []
    (count,) = fetch_rows(target, f"select count(*) from {SCHEMA}.action")[0]
    assert count == ROWS
    (left,) = fetch_rows(
        target,
        "select count(*) from pg_tables where schemaname = %s and tablename like 'action_staging%%'",
        (SCHEMA,),
    )[0]
    assert left == 0, "each publish dropped its staging table"


def test_without_the_lock_the_stand_in_aborts_one_with_redshift_error_1023(
    publish_target, target, backend_dsn
):
    """The same statements minus the LOCK: the incremental publish deletes rows the full refresh
    deleted in its open transaction; once that one commits, Redshift (and the stand-in) abort
    the other with a serializable isolation violation."""
    from tracking_sync.connections import redshift_connection
    from tracking_sync.load.publish import _bounds, publish_statements

    def statements(staging, run_slice):
        bounds = {} if run_slice.full_refresh else _bounds(run_slice)
        return [
            (sql, bounds if "%(start)s" in sql else None)
            for sql in publish_statements(SCHEMA, staging, run_slice)
        ]

    def execute(connection, steps):
        cursor = connection.cursor()
        cursor.paramstyle = "pyformat"
        for sql, params in steps:
            cursor.execute(sql, params)

    class Unlocked(threading.Thread):
        def __init__(self, connection) -> None:
            super().__init__(daemon=True)
            self.connection, self.error = connection, None

        def run(self) -> None:
            try:
                execute(self.connection, statements(DAY, the_day()))
                self.connection.commit()
            except BaseException as error:  # reported by the test
                self.error = error
                self.connection.rollback()

    with (
        closing(redshift_connection()) as first,
        closing(redshift_connection()) as second,
        closing(watch(backend_dsn)) as seen,
    ):
        full = statements(FULL, full_refresh())
        execute(first, full[:1])  # the full refresh's DELETE, uncommitted
        other = Unlocked(second)
        other.start()
        try:
            wait_until(
                lambda: lock_waiters(seen, f"delete from {SCHEMA}.action%"),
                "the second publish's DELETE to wait on the rows the first deleted",
                on_timeout=lambda: activity(seen),
            )
            execute(first, full[1:])
            first.commit()
        finally:
            other.join(timeout=60)
        assert not other.is_alive()
    message = str(other.error)
    assert "1023" in message and "Serializable isolation violation on table" in message, message
    assert duplicates(target) == []
    assert fetch_rows(target, f"select distinct query from {SCHEMA}.action") == [("full",)]
