"""Issue 4 with Airflow's REAL backfill machinery: `airflow backfill create` over a date
range leaves the same target as the nightly runs would, and rerunning it changes nothing.

Not dag.test(): the test starts the real components (api-server, dag-processor, scheduler
with the LocalExecutor) through devstack.airflow.AirflowDeployment, as subprocesses on an
AIRFLOW_HOME of their own and a metadata database of their own on the session stack's
PostgreSQL (SQLite locked up under backfills: see devstack/airflow.py), with the stack as
source, S3 and Redshift. The test process only runs the CLI (`dags trigger`, `backfill create`)
and reads the metadata DB to wait.

Teardown stops every process the test started, also when it fails (SIGINT, SIGKILL after a
timeout, a sweep of their sessions for task processes), and asserts that no process, port or
metadata database is left.

The DAG keeps its retries (3, two minutes apart): a task that fails or goes up_for_retry
fails the test at once, with the end of its log, instead of waiting for a retry.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from devstack import demo_data
from devstack.airflow import AirflowDeployment
from devstack.stack import REDSHIFT_USER_PASSWORD, SOURCE_ROLE_PASSWORD
from tests.dag_helpers import COMPONENTS, RUN_TIMEOUT, backfill_create, wait_for_backfill
from tests.pipeline_helpers import (
    assert_same_rows,
    change_source_within,
    fetch_rows,
    source_rows,
    target_rows,
)
from tracking_sync.core.names import DAG_ID

pytestmark = pytest.mark.integration


# Demo data over 2025-03-01 .. 2025-03-07; the backfill moves 03-03, 03-04 and 03-05.
DATA_START, DATA_DAYS = "2025-03-01", 7
ROWS, USERS = 3_000, 60
D1 = datetime(2025, 3, 3, tzinfo=UTC)
DAYS = [D1 + timedelta(days=n) for n in range(2)]
END = D1 + timedelta(days=len(DAYS))  # the backfill covers [D1, END)
FULL_REFRESH_AT = datetime(2025, 3, 10, tzinfo=UTC)  # after every row of the demo data


def _backfill(deployment: AirflowDeployment, *extra: str) -> int:
    """`airflow backfill create` for [D1, END); returns the backfill's id."""
    return backfill_create(
        deployment,
        "--dag-id",
        DAG_ID,
        "--from-date",
        DAYS[0].date().isoformat(),
        "--to-date",
        DAYS[-1].date().isoformat(),
        *extra,
    )


def _wait_for_backfill(
    deployment: AirflowDeployment, backfill_id: int, *, until_completed: bool
) -> list[tuple]:
    return wait_for_backfill(
        deployment, backfill_id, len(DAYS), until_completed=until_completed, timeout=RUN_TIMEOUT
    )


@pytest.fixture
def deployment(airflow_deployment):
    return airflow_deployment


@pytest.fixture
def target_schema(target_schema_of_test):
    return target_schema_of_test


def _in_range(timestamp_type: str) -> str:
    suffix = "+00" if timestamp_type == "timestamptz" else ""
    return (
        f"action_time >= '{D1:%Y-%m-%d %H:%M:%S}{suffix}' and action_time < '{END:%Y-%m-%d %H:%M:%S}{suffix}'"
    )


def _assert_backfill_runs(deployment: AirflowDeployment, runs: list[tuple], what: str) -> None:
    intervals = [(_as_utc(start), _as_utc(end)) for _, _, start, end in runs]
    assert intervals == [(day, day + timedelta(days=1)) for day in DAYS], (
        f"{what}: one run per day of the range, each with its day as data interval: {runs}"
    )
    states = deployment.task_states([run_id for run_id, *_ in runs])
    for run_id, state, *_ in runs:
        assert state == "success", f"{what}: run {run_id} is {state}: {states.get(run_id)}"
        assert states[run_id].get("validate") == "success", f"{what}: {run_id}: {states[run_id]}"
        assert set(states[run_id].values()) == {"success"}, f"{what}: {run_id}: {states[run_id]}"


def _as_utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def test_airflow_backfill_over_a_range_matches_the_source_and_reruns_idempotently(
    deployment, stack, target_schema
):
    """Full refresh (a manual run), late corrections in two days, `airflow backfill create`
    over those days: every run succeeds (validate included) and the target equals the source
    row for row; the same backfill again with --reprocess-behavior completed reruns every
    task and changes nothing. No secret reaches a task log or a component's output."""
    demo_data.generate(
        stack.source_dsn, rows=ROWS, seed=11, users=USERS, period_start=DATA_START, period_days=DATA_DAYS
    )
    source = psycopg2.connect(stack.source_dsn)
    target = psycopg2.connect(stack.redshift.dsn())
    try:
        # A full refresh into a schema of this test's own, as an operator triggers it.
        run_id = f"full_refresh_{uuid.uuid4().hex[:6]}"
        deployment.cli(
            "dags",
            "trigger",
            DAG_ID,
            "--run-id",
            run_id,
            # With no logical date (the CLI's default) the run has no data interval, and
            # validate fails on it: a known issue of the DAG, reported, not tested here.
            "--logical-date",
            FULL_REFRESH_AT.isoformat(),
            "--conf",
            json.dumps({"mode": "full_refresh", "target_schema": target_schema}),
        )
        (full,) = deployment.wait_for_runs("dag_run.run_id = %s", (run_id,), 1, timeout=RUN_TIMEOUT)
        assert full[1] == "success", deployment.task_states([run_id])
        assert_same_rows(source_rows(source), target_rows(target, target_schema), "after the full refresh")

        for day in DAYS:
            change_source_within(source, day)
        expected = source_rows(source, _in_range("timestamp"))
        assert target_rows(target, target_schema, _in_range("timestamptz")) != expected, "the days differ now"

        # One run at a time, as the nightly runs go (the DAG's max_active_runs=1). Without
        # --max-active-runs a backfill runs up to 10 at once and ignores the DAG's limit:
        # concurrent REPLACEs of action_type and a day validated before the day before it
        # is reloaded make that racy -- a known issue of the DAG, reported, not tested here.
        conf = ("--dag-run-conf", json.dumps({"target_schema": target_schema}), "--max-active-runs", "1")
        first = _backfill(deployment, *conf)
        runs = _wait_for_backfill(deployment, first, until_completed=True)
        _assert_backfill_runs(deployment, runs, "backfill")
        assert_same_rows(
            expected, target_rows(target, target_schema, _in_range("timestamptz")), "backfilled days"
        )
        assert_same_rows(
            source_rows(source), target_rows(target, target_schema), "whole table after the backfill"
        )

        # The same backfill again: the completed runs are cleared and run again, with no effect.
        started = time.time()
        second = _backfill(deployment, *conf, "--reprocess-behavior", "completed")
        reruns = _wait_for_backfill(deployment, second, until_completed=False)
        _assert_backfill_runs(deployment, reruns, "rerun")
        assert [r[0] for r in reruns] == [r[0] for r in runs], "the same runs, cleared and run again"
        rerun_starts = deployment.query(
            "select task_id, start_date from task_instance where run_id = any(%s)",
            ([r[0] for r in runs],),
        )
        assert all(_as_utc(start).timestamp() >= started - 1 for _, start in rerun_starts), rerun_starts
        assert_same_rows(source_rows(source), target_rows(target, target_schema), "after the rerun")
        staging = fetch_rows(
            target,
            "select tablename from pg_tables where schemaname = %s and tablename like 'action_staging%%'",
            (target_schema,),
        )
        assert staging == [], "every staging table is dropped by its publish"
    finally:
        source.close()
        target.close()

    secrets = {
        "the aws secret key": stack.s3.secret_access_key,
        "the PostgreSQL password": stack.postgres.password,
        "the Redshift password": stack.redshift.password,
        # what the tasks connect with: the grant scripts' roles (devstack.stack)
        "the source role's password": SOURCE_ROLE_PASSWORD,
        "the Redshift user's password": REDSHIFT_USER_PASSWORD,
    }
    places = {f"log file {p}": p for p in (deployment.home / "logs").rglob("*") if p.is_file()}
    places.update({f"output of airflow {name}": deployment.output(name) for name in COMPONENTS})
    places["output of the CLI"] = deployment.cli_transcript
    copy_logs = [path for place, path in places.items() if "task_id=load_action_staging" in place]
    assert len(copy_logs) == 1 + 2 * len(DAYS), f"a COPY log per run and attempt: {copy_logs}"
    for path in copy_logs:  # the statement carrying the secret is logged, redacted
        assert "aws_secret_access_key=***" in path.read_text(errors="replace"), path
    for what, secret in secrets.items():
        for place, path in places.items():
            assert secret not in path.read_text(errors="replace"), f"{what} appeared in {place}"
