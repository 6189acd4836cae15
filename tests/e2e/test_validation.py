"""The validate task end to end: the real DAG (dag.test()) against the local PostgreSQL,
S3 and the Redshift stand-in, whose EXTRACT follows Redshift (integer from TIMESTAMP).

Each test loads its own target schema, so it neither sees nor disturbs other tests.
The demo data is kept small: the stand-in emulates Redshift's EXTRACT with SQL
functions, which are slow on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import psycopg2
import pytest
import redshift_connector
from airflow.sdk import BaseNotifier

from devstack import demo_data
from tests.dag_helpers import load_dag
from tracking_sync.core.names import REPORT_XCOM_KEY
from tracking_sync.validate.run import run_validation

pytestmark = pytest.mark.integration

ROWS = 2_000
USERS = 50
FIRST_DAY = datetime(2025, 3, 1, tzinfo=UTC)
END_OF_DATA = datetime(2026, 1, 2, tzinfo=UTC)
NOTIFIED = "TRACKING_SYNC_TEST_NOTIFIED"  # file the test notifier appends to


class FileNotifier(BaseNotifier):
    """A real notifier: appends the failure summary it receives to a file."""

    def notify(self, context):
        with open(os.environ[NOTIFIED], "a") as out:
            out.write(context["failure_summary"] + "\n")


@pytest.fixture(scope="module")
def validation_env(stack_env, airflow_db, tmp_path_factory):
    settings = {
        "TRACKING_SYNC_STAGING_DIR": str(tmp_path_factory.mktemp("validation-staging")),
        "TRACKING_SYNC_PREFIX": f"validation-{uuid.uuid4().hex[:8]}",
        "TRACKING_SYNC_NOTIFIER": f"{FileNotifier.__module__}.FileNotifier",
        NOTIFIED: str(tmp_path_factory.mktemp("notified") / "summaries.txt"),
    }
    with pytest.MonkeyPatch.context() as patch:  # restores the environment afterwards
        for name, value in settings.items():
            patch.setenv(name, value)
        yield settings


@pytest.fixture(scope="module")
def dag(validation_env):
    """The DAG as the DAG processor sees it; retries off except on validate, which keeps
    retries (with a tiny delay) to show that a mismatch is not retried."""
    dag = load_dag(retries=0)
    validate = dag.get_task("validate")
    validate.retries = 2
    validate.retry_delay = timedelta(seconds=1)
    validate.retry_exponential_backoff = False
    return dag


@pytest.fixture
def loaded(stack, dag):
    """Demo data in the source and a full refresh of it into a schema of this test's own."""
    # USERS users: several sessions each, so a day's users have a history before it
    demo_data.generate(stack.source_dsn, rows=ROWS, seed=3, users=USERS)
    schema = f"validation_{uuid.uuid4().hex[:8]}"
    run = _run(dag, FIRST_DAY, {"mode": "full_refresh", "target_schema": schema})
    assert run.state == "success", _task_states(run)
    backend = psycopg2.connect(stack.redshift.backend_dsn())
    backend.autocommit = True
    try:
        yield schema, backend
    finally:
        with backend.cursor() as cursor:
            cursor.execute(f"drop schema if exists {schema} cascade")
        backend.close()


def _run(dag, logical_date, conf):
    # Every param explicitly: in one process, a run's conf stays in the DAG's params and
    # leaks into the next dag.test() (seen: a full_refresh conf made the next run full too).
    conf = {"mode": "incremental", "validation": "scoped", **conf}
    return dag.test(logical_date=logical_date, run_conf=conf)


def _task_states(run):
    return {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}


def _report(run) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=run.run_id, key=REPORT_XCOM_KEY, task_ids="validate", dag_ids=run.dag_id
            )
        ).one()
        value = XComModel.deserialize_value(row)
    return value if isinstance(value, dict) else json.loads(value)


def _notified(validation_env) -> list[str]:
    path = Path(validation_env[NOTIFIED])
    return path.read_text().splitlines() if path.exists() else []


def test_full_refresh_and_incremental_runs_validate(dag, loaded):
    schema, _ = loaded
    for day in range(1, 3):  # two nightly intervals after the full refresh
        run = _run(dag, FIRST_DAY + timedelta(days=day), {"target_schema": schema})
        assert run.state == "success", _task_states(run)
    report = _report(run)
    assert report["passed"] and report["scope"] == "scoped"
    # dag.test(logical_date=D) runs the last complete interval before D: [D-1, D)
    assert report["window_start"] == "2025-03-02T00:00:00+00:00"
    assert {check["name"] for check in report["checks"]} >= {
        "per_user_session_totals",
        "table_row_counts",
        "action_rows_per_day",
    }


def test_a_mismatch_fails_once_with_the_report_and_notifies(dag, loaded, validation_env):
    schema, backend = loaded
    with backend.cursor() as cursor:  # a day before the next run's interval, which it does not reload
        cursor.execute("set timezone to 'UTC'")
        cursor.execute(
            f"delete from {schema}.action where id = (select min(id) from {schema}.action "
            "where action_time < '2025-02-20') returning cast(action_time as date)"
        )
        (day,) = cursor.fetchone()
    before = len(_notified(validation_env))
    run = _run(dag, FIRST_DAY + timedelta(days=1), {"target_schema": schema, "validation": "full"})
    states = _task_states(run)
    assert run.state == "failed"
    assert states["validate"] == ("failed", 1), states  # failed at once: no retry
    assert states["replace_action_rows"][0] == "success"
    report = _report(run)
    assert not report["passed"] and report["days_to_backfill"] == [day.isoformat()]
    assert (
        f"CLI: airflow backfill create --dag-id postgres_to_redshift --from-date {day} "
        f"--to-date {day} --reprocess-behavior completed --max-active-runs 1 "
        f'--dag-run-conf \'{{"target_schema": "{schema}"}}\''  # the run's own schema travels
    ) in report["repair"]
    summaries = _notified(validation_env)[before:]
    assert len(summaries) == 1
    assert "dag=postgres_to_redshift task=validate" in summaries[0]
    assert "interval=2025-03-01T00:00:00+00:00 -> 2025-03-02T00:00:00+00:00" in summaries[0]
    assert "what=AirflowFailException: parity FAILED (full)" in summaries[0]
    assert "report=XCom 'validation_report' of task validate" in summaries[0]


def test_timestamp_instead_of_timestamptz_fails_and_says_why(dag, loaded, stack):
    schema, backend = loaded
    with backend.cursor() as cursor:
        cursor.execute("set timezone to 'UTC'")
        cursor.execute(f"alter table {schema}.action alter column action_time type timestamp")
    run = _run(dag, FIRST_DAY + timedelta(days=1), {"target_schema": schema, "validation": "full"})
    assert run.state == "failed" and _task_states(run)["validate"] == ("failed", 1)
    report = _report(run)
    totals = next(c for c in report["checks"] if c["name"] == "per_user_session_totals")
    assert totals["differing"] > 0 and totals["missing_in_target"] == 0
    assert all(abs(d["delta"]) < 1 for d in totals["top_differences"])  # fractions lost
    assert any("action_time must be TIMESTAMPTZ on Redshift" in hint for hint in report["diagnosis"])
    assert any("full_refresh" in step for step in report["repair"])


@pytest.mark.parametrize(
    "damage, check, counts, kind, column",
    [
        pytest.param(
            # the last action of a session, one second later: its duration grows by 1 s
            "update {s}.action set action_time = action_time + interval '1 second' where id = ("
            "select id from {s}.action a where action_time = (select max(action_time) from "
            "{s}.action b where b.session_id = a.session_id) order by id limit 1) returning id",
            "per_user_session_totals",
            (1, 0, 0),
            "changed",
            "action_time",
            id="action_time-moved-by-a-second",
        ),
        pytest.param(
            "update {s}.action set query = 'select 2 -- changed in the target' where id = ("
            "select min(id) from {s}.action where query is not null) returning id",
            "action_rows_per_day",
            (1, 0, 0),
            "changed",
            "query",
            id="query-changed",
        ),
        pytest.param(
            "delete from {s}.action where id = (select max(id) from {s}.action) returning id",
            "table_row_counts",
            (1, 0, 0),
            "missing in target",
            None,
            id="row-deleted",
        ),
        pytest.param(
            "insert into {s}.action select * from {s}.action where id = (select min(id) from {s}.action) "
            "returning id",
            "table_row_counts",
            (1, 0, 0),
            "extra in target",
            None,
            id="extra-row",
        ),
        pytest.param(
            "delete from {s}.action where user_profile_id = (select min(user_profile_id) from {s}.action) "
            "returning id",
            "per_user_session_totals",
            (0, 1, 0),
            "missing in target",
            None,
            id="user-missing",
        ),
    ],
)
def test_damage_to_the_target_is_reported_through_the_stand_in(
    stack, loaded, damage, check, counts, kind, column
):
    """The comparison through the real drivers (psycopg 3 to the source, redshift_connector to
    the stand-in), without a DAG run per case; the drill-down names each damaged row."""
    schema, backend = loaded
    with backend.cursor() as cursor:
        cursor.execute("set timezone to 'UTC'")
        cursor.execute(damage.format(s=schema))
        damaged = sorted(row_id for (row_id,) in cursor.fetchall())
        assert damaged
    with (
        psycopg.connect(stack.source_dsn) as source,
        redshift_connector.connect(**stack.redshift.connect_kwargs()) as target,
    ):
        report = run_validation(
            source,
            target,
            target_schema=schema,
            window_start=END_OF_DATA,
            window_end=END_OF_DATA,
            scope="full",
        )
        source_row = source.execute(
            "select action_time, query from action where id = %s", (damaged[0],)
        ).fetchone()
    result = next(c for c in report.checks if c.name == check)
    assert (result.differing, result.missing_in_target, result.missing_in_source) == counts
    assert not report.passed and report.days_to_backfill
    # the drill-down: exactly the damaged rows, each with its column and both values
    rows = report.rows.rows
    assert report.rows.row_ids == damaged and report.rows.capped is None
    assert {(row.kind, row.column) for row in rows} == {(kind, column)}
    first = rows[0]
    if column == "action_time":
        assert first.source == source_row[0].isoformat(sep=" ")
        assert first.target == (source_row[0] + timedelta(seconds=1)).isoformat(sep=" ")
    elif column == "query":
        assert (first.source, first.target) == (source_row[1], "select 2 -- changed in the target")
    table = report.format_table()
    assert f"rows that differ: {len(damaged)}" in table
    assert any(line.startswith(f"{damaged[0]} ") and kind in line for line in table.splitlines())
    xcom_rows = report.to_dict()["rows"]["rows"]
    assert sorted({row["id"] for row in xcom_rows}) == damaged


def _move_last_action_of_first_session(backend, schema, user) -> None:
    """One second later: the last action of the user's first session (its duration + 1 s)."""
    with backend.cursor() as cursor:
        cursor.execute(
            f"""
            update {schema}.action set action_time = action_time + interval '1 second'
            where id = (
                select id from {schema}.action
                where session_id = (
                    select session_id from {schema}.action where user_profile_id = %s
                    order by action_time limit 1)
                order by action_time desc, id limit 1)
            """,
            (user,),
        )
        assert cursor.rowcount == 1


def test_scoped_validation_checks_the_interval_users_whole_history(stack, loaded):
    """Through the stand-in: a scoped check sees an old row of a user active in the
    interval, not one of a user who is not; a full check sees both."""
    schema, backend = loaded
    with psycopg.connect(stack.source_dsn) as source:
        # a user active on a day long after their first session: the interval is that day
        (active, day) = source.execute(
            "select user_profile_id, cast(max(action_time) as date) from action "
            "group by user_profile_id "
            "having cast(max(action_time) as date) - cast(min(action_time) as date) > 2 "
            "order by user_profile_id limit 1"
        ).fetchone()
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        (inactive,) = source.execute(
            "select min(user_profile_id) from action where action_time < %s "
            "and user_profile_id not in (select user_profile_id from action "
            "where action_time >= %s and action_time < %s)",
            (start.replace(tzinfo=None), start.replace(tzinfo=None), end.replace(tzinfo=None)),
        ).fetchone()
    _move_last_action_of_first_session(backend, schema, active)
    _move_last_action_of_first_session(backend, schema, inactive)

    def differing_users(scope):
        with (
            psycopg.connect(stack.source_dsn) as source,
            redshift_connector.connect(**stack.redshift.connect_kwargs()) as target,
        ):
            report = run_validation(
                source, target, target_schema=schema, window_start=start, window_end=end, scope=scope
            )
        totals = next(c for c in report.checks if c.name == "per_user_session_totals")
        return report, sorted(d.key[0] for d in totals.top_differences if d.column == "total_time_spent")

    scoped, users = differing_users("scoped")
    assert users == [active] and not scoped.passed
    assert scoped.days_to_backfill == []  # the interval's day itself is right
    assert any('"validation": "full"' in step for step in scoped.repair)
    full, users = differing_users("full")
    assert users == sorted([active, inactive]) and len(full.days_to_backfill) >= 1
