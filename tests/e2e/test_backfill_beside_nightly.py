"""Issue 18, backfills beside the nightly, with Airflow's REAL scheduler: an operator unpauses
the DAG over an empty target and, right after, starts a two-day backfill through the REST API
(as the UI's Trigger → Backfill does). The nightly run of the latest interval starts at once
and bootstraps the target (no sync state yet: the slot first, then action whole); the
backfill's runs reload their days beside it. Every run ends green, the target equals the
source row for row, the sync state says logical capture, and no run's files were swept from
S3 under another run. Then a late row and a delete on a loaded day reach the target through a
manual run of the captured changes (mode=changes, REST API).

The scheduled run loads the default schema, `tracking`: the only one a scheduled run loads.
The session's stack may hold `tracking` and its slot from other tests, so the fixture drops
both before the deployment starts and again afterwards (no slot is left retaining WAL).

Scheduled runs are on here (the shared `airflow_deployment` turns them off), so the
deployment is started by this module's fixture, with the same teardown checks.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from devstack import demo_data
from devstack.airflow import AirflowDeployment
from tests.dag_helpers import COMPONENTS, RUN_TIMEOUT, STARTUP_TIMEOUT, STOP_TIMEOUT, wait_for_backfill
from tests.pipeline_helpers import assert_same_rows, fetch_rows, insert_actions, source_rows, target_rows
from tracking_sync.core.names import DAG_ID

pytestmark = pytest.mark.integration

SCHEMA = "tracking"  # what a scheduled run loads (the target_schema param's default)
SLOT = f"tracking_sync_{SCHEMA}"
ROWS, USERS = 3_000, 40
DATA_START, DATA_DAYS = "2025-03-01", 7  # more than a year before the nightly's interval
DAYS = [datetime(2025, 3, 3, tzinfo=UTC), datetime(2025, 3, 4, tzinfo=UTC)]  # the backfill


# A run that plans while another bootstraps the target waits in its plan_run (polling the
# target's sync state), and past a try's bound by retrying it.
WAITS = ("plan_run",)


def drop_default_target(stack) -> None:
    """`tracking` and its slot gone: the target is empty, with no sync state."""
    source = psycopg2.connect(stack.source_dsn)
    source.autocommit = True
    try:
        with source.cursor() as cursor:
            cursor.execute(
                "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = %s",
                (SLOT,),
            )
    finally:
        source.close()
    backend = psycopg2.connect(stack.redshift.backend_dsn())
    backend.autocommit = True
    try:
        with backend.cursor() as cursor:
            cursor.execute(f"drop schema if exists {SCHEMA} cascade")
    finally:
        backend.close()


@pytest.fixture
def nightly_deployment(stack, tmp_path):
    """Demo data in the source, an empty `tracking`, and Airflow (api-server, dag-processor,
    scheduler) with scheduled runs on and the DAG paused, as it arrives."""
    drop_default_target(stack)
    demo_data.generate(
        stack.source_dsn, rows=ROWS, seed=18, users=USERS, period_start=DATA_START, period_days=DATA_DAYS
    )
    staging = tmp_path / "staging"
    staging.mkdir()
    deployment = AirflowDeployment(
        tmp_path / "airflow-home",
        postgres=stack.postgres,
        components=COMPONENTS,
        startup_timeout=STARTUP_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
        env={
            **stack.env(),
            "TRACKING_SYNC_STAGING_DIR": str(staging),
            "TRACKING_SYNC_PREFIX": f"beside-{uuid.uuid4().hex[:8]}",
            "TRACKING_SYNC_PART_MB": "1",
        },
    )
    try:
        deployment.start(dag_ids=(DAG_ID,))
        yield deployment
    finally:
        hard_killed = deployment.stop()
        print("\n".join(deployment.timings))
        left, open_ports = deployment.leftover_pids(), deployment.open_ports()
        drop_default_target(stack)
        assert not left and not open_ports, f"left behind: pids {left}, ports {open_ports}"
        if hard_killed:
            print(f"killed with SIGKILL: {hard_killed}")


def as_utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def xcoms(deployment: AirflowDeployment, run_id: str, task_id: str) -> dict:
    """{key: value} of one task's XComs (the metadata DB keeps them as JSON)."""
    return dict(
        deployment.query(
            "select key, value from xcom where dag_id = %s and run_id = %s and task_id = %s",
            (DAG_ID, run_id, task_id),
        )
    )


def how_runs_move_action(deployment: AirflowDeployment) -> dict[str, tuple]:
    """{run_id: (action_load, bootstrap, slice_label)} as each run's plan_run decided."""
    rows = deployment.query(
        "select run_id, key, value from xcom where dag_id = %s and task_id = 'plan_run' "
        "and key in ('action_load', 'bootstrap', 'slice_label')",
        (DAG_ID,),
    )
    plans: dict[str, dict] = {}
    for run_id, key, value in rows:
        plans.setdefault(run_id, {})[key] = value
    return {
        run_id: (plan.get("action_load"), plan.get("bootstrap"), plan.get("slice_label"))
        for run_id, plan in sorted(plans.items())
    }


def task_log_text(deployment: AirflowDeployment, run_id: str) -> str:
    logs = deployment.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
    return "\n".join(path.read_text(errors="replace") for path in sorted(logs.rglob("*.log")))


def assert_green(deployment: AirflowDeployment, runs: list[tuple], what: str) -> None:
    states = deployment.task_states([run_id for run_id, *_ in runs])
    for run_id, state, *_ in runs:
        assert state == "success", f"{what}: run {run_id} is {state}: {states.get(run_id)}"
        assert set(states[run_id].values()) == {"success"}, f"{what}: {run_id}: {states[run_id]}"


def manifests(stack, prefix: str) -> set[str]:
    """The interval labels of action whose manifest is in S3."""
    listed = stack.s3.client().list_objects_v2(Bucket=stack.s3.bucket, Prefix=f"{prefix}/action/")
    return {
        item["Key"].split("/")[-2]
        for item in listed.get("Contents", [])
        if item["Key"].endswith("/manifest.json")
    }


def late_row_and_delete(source, day: datetime) -> dict:
    """On a loaded day: a late row of a known session, and a row deleted."""
    lo, hi = day.replace(tzinfo=None), (day + timedelta(days=1)).replace(tzinfo=None)
    with source.cursor() as cursor:
        cursor.execute(
            "select id, user_profile_id, session_id from action where action_time >= %s and action_time < %s "
            "order by id limit 1",
            (lo, hi),
        )
        deleted, user, session = cursor.fetchone()
        cursor.execute("delete from action where id = %s", (deleted,))
        cursor.execute("select max(id) from action")
        (max_id,) = cursor.fetchone()
    source.commit()
    late = max_id + 1
    insert_actions(
        source, [(late, user, session, 3, lo + timedelta(hours=22), None, None, None, False, "late")]
    )
    return {"deleted": deleted, "late": late}


def test_a_backfill_beside_the_nightly_on_an_empty_target_ends_green_and_equal(nightly_deployment, stack):
    deployment = nightly_deployment
    started = time.monotonic()
    ((paused,),) = deployment.query("select is_paused from dag where dag_id = %s", (DAG_ID,))
    assert paused, "the DAG arrives paused: nothing ran before the operator unpaused it"
    token = deployment.access_token()

    # The operator's two clicks: the pause toggle, then Trigger → Backfill of two days.
    deployment.api("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False}, token=token)
    backfill = deployment.api(
        "POST",
        "/api/v2/backfills",
        {
            "dag_id": DAG_ID,
            "from_date": DAYS[0].isoformat(),
            "to_date": DAYS[-1].isoformat(),
            "max_active_runs": 1,
            "reprocess_behavior": "completed",
            "run_backwards": False,
            "dag_run_conf": {},
        },
        token=token,
    )

    try:
        # The run that plans second waits for the first one's bootstrap: its plan_run retries.
        backfill_runs = wait_for_backfill(
            deployment,
            backfill["id"],
            len(DAYS),
            until_completed=False,
            timeout=2 * RUN_TIMEOUT,
            may_retry=WAITS,
        )
        (scheduled,) = deployment.wait_for_runs(
            "dag_run.dag_id = %s and dag_run.run_type = 'scheduled'",
            (DAG_ID,),
            1,
            timeout=2 * RUN_TIMEOUT,
            may_retry=WAITS,
        )
    except AssertionError as error:
        raise AssertionError(
            f"how each run moves action: {how_runs_move_action(deployment)}\n{error}"
        ) from None
    runs = [scheduled, *backfill_runs]
    assert_green(deployment, runs, "the nightly and the backfill")
    assert [(as_utc(start), as_utc(end)) for _, _, start, end in backfill_runs] == [
        (day, day + timedelta(days=1)) for day in DAYS
    ], backfill_runs
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert (as_utc(scheduled[2]), as_utc(scheduled[3])) == (today - timedelta(days=1), today), scheduled

    plans = {run_id: xcoms(deployment, run_id, "plan_run") for run_id, *_ in runs}
    how = how_runs_move_action(deployment)
    print(f"how each run moved action: {how}")
    assert sum(bootstrap for _, bootstrap, _ in how.values()) == 1, f"one bootstrap, the first run: {how}"

    source = psycopg2.connect(stack.source_dsn)
    target = psycopg2.connect(stack.redshift.dsn())
    try:
        assert_same_rows(
            source_rows(source), target_rows(target, SCHEMA), "after the nightly and the backfill"
        )
        ((capture, slot, applied_lsn, bootstrapped_by),) = fetch_rows(
            target, f"select capture, slot_name, applied_lsn, bootstrapped_by from {SCHEMA}.sync_state"
        )
        assert (capture.strip(), slot.strip()) == ("logical", SLOT)
        assert applied_lsn is not None and bootstrapped_by in plans, bootstrapped_by

        # No run's files were swept from under it: a run sweeps old intervals only when it runs
        # alone, so a backfill's manifest is gone only if a sweep began after the backfill
        # ended; and no COPY missed a manifest or a part (a retried StagedFilesMissing included).
        prefix = deployment.env["TRACKING_SYNC_PREFIX"]
        backfill_labels = {plans[run_id]["slice_label"] for run_id, *_ in backfill_runs}
        ((backfill_ended,),) = deployment.query(
            "select max(end_date) from dag_run where backfill_id = %s", (backfill["id"],)
        )
        swept_alone = set()
        for run_id, *_ in runs:
            swept = set(xcoms(deployment, run_id, "write_action_manifest").get("expired_intervals") or [])
            if swept & backfill_labels:
                ((sweep_started,),) = deployment.query(
                    "select start_date from task_instance where run_id = %s and task_id = %s",
                    (run_id, "write_action_manifest"),
                )
                assert sweep_started >= backfill_ended, f"{run_id} swept {swept} while the backfill ran"
                swept_alone |= swept
            logs = task_log_text(deployment, run_id)  # a part gone fails the load: StagedFilesExpired
            assert "StagedFilesMissing" not in logs and "StagedFilesExpired" not in logs, run_id
        in_s3 = manifests(stack, prefix)
        print(f"action manifests in S3: {sorted(in_s3)}; swept by a run alone: {sorted(swept_alone)}")
        assert backfill_labels <= in_s3 | swept_alone, f"backfill manifests gone from S3: {in_s3}"

        # A late row and a delete on a loaded day; a manual run applies the captured changes.
        changed = late_row_and_delete(source, DAYS[0])
        run = deployment.api(
            "POST",
            f"/api/v2/dags/{DAG_ID}/dagRuns",
            {
                "dag_run_id": f"changes_{uuid.uuid4().hex[:6]}",
                "logical_date": datetime.now(UTC).replace(microsecond=0).isoformat(),
                "conf": {"mode": "changes"},
            },
            token=token,
        )
        (changes_run,) = deployment.wait_for_runs("dag_run.run_id = %s", (run["dag_run_id"],), 1)
        assert_green(deployment, [changes_run], "the changes run")
        assert xcoms(deployment, changes_run[0], "plan_run")["action_load"] == "changes"
        assert_same_rows(source_rows(source), target_rows(target, SCHEMA), "after the changes run")
        ids = fetch_rows(
            target,
            f"select id from {SCHEMA}.action where id in (%s, %s) order by id",
            tuple(changed.values()),
        )
        assert ids == [(changed["late"],)], f"the late row arrived, the deleted one left: {ids}"
    finally:
        source.close()
        target.close()
    print(f"test body: {time.monotonic() - started:.1f}s")
