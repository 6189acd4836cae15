"""On-call beyond task states, through Airflow's real scheduler, triggerer and dag-processor.

One deployment whose dags folder holds the pipeline's DAG file and a downstream analytics
DAG scheduled on the `action` Asset, with scheduled runs on, a tiny deadline and a test
notifier that writes to a file:
- the first night as the README says: the DAG arrives paused, a full refresh runs by
  `airflow dags test`, then unpausing runs the latest interval, green;
- unpausing starts the latest nightly interval (catchup off); its deadline (interval end +
  3 s) has long passed, so the triggerer runs the Deadline Alert's callback and the
  notifier gets the LATE line naming the run and how late it is;
- a full refresh that passes validate publishes the Assets, and the downstream DAG runs
  and sees the event's extra: the run, the interval and the row counts.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devstack import demo_data
from tests.dag_helpers import DAG_ID, RUN_TIMEOUT, STARTUP_TIMEOUT, STOP_TIMEOUT
from tracking_sync.oncall.deadlines import DEADLINE_ENV

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CONSUMER_FILE = Path(__file__).parent / "consumer_dags" / "analytics_on_tracking.py"
CONSUMER_DAG_ID = "analytics_on_tracking"
COMPONENTS = ("api-server", "dag-processor", "scheduler", "triggerer")
SOURCE_ROWS = 1_500
LATENESS_MINUTES = "0.05"  # a nightly run is late 3 s after its interval's end


@pytest.fixture(scope="module")
def oncall_deployment(stack, tmp_path_factory):
    """Airflow with a triggerer and scheduled runs, the pipeline unpaused; its notifier
    writes to `notified`, the downstream DAG to `consumed`."""
    from devstack.airflow import AirflowDeployment

    root = tmp_path_factory.mktemp("oncall")
    dags = root / "dags"
    dags.mkdir()
    shutil.copy(REPO_ROOT / "dags" / "postgres_to_redshift.py", dags)
    shutil.copy(CONSUMER_FILE, dags)
    (root / "staging").mkdir()
    notified, consumed = root / "notified.txt", root / "consumed.jsonl"
    demo_data.generate(stack.source_dsn, rows=SOURCE_ROWS, users=30, period_start="2025-03-01", period_days=4)
    deployment = AirflowDeployment(
        root / "airflow-home",
        postgres=stack.postgres,
        components=COMPONENTS,
        dags_folder=dags,
        startup_timeout=STARTUP_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
        env={
            **stack.env(),
            "TRACKING_SYNC_STAGING_DIR": str(root / "staging"),
            "TRACKING_SYNC_PREFIX": f"oncall-{uuid.uuid4().hex[:8]}",
            "TRACKING_SYNC_PART_MB": "1",
            DEADLINE_ENV: LATENESS_MINUTES,
            "TRACKING_SYNC_NOTIFIER": "tests.e2e.notifiers.FileNotifier",
            "TRACKING_SYNC_NOTIFIER_KWARGS": json.dumps({"path": str(notified)}),
            "ONCALL_TEST_CONSUMER_OUT": str(consumed),
        },
    )
    try:
        deployment.start(dag_ids=(DAG_ID, CONSUMER_DAG_ID))
        # The first night as the README says: paused, a full refresh by `airflow dags test`
        # (the deployment's settings, deadline on), then unpause.
        (paused,) = deployment.query("select is_paused from dag where dag_id = %s", (DAG_ID,))[0]
        assert paused, "the pipeline starts paused (is_paused_upon_creation)"
        deployment.cli("dags", "test", DAG_ID, "--conf", json.dumps({"mode": "full_refresh"}), timeout=900)
        # `dags test` may have written the DAG without its deadline (tracking_sync.oncall.deadlines);
        # the run unpausing starts must have it.
        wait_for_serialized_deadline(deployment)
        deployment.cli("dags", "unpause", DAG_ID)
        yield deployment, notified, consumed
    finally:
        killed = deployment.stop()
        print("\n".join(deployment.timings))
        assert not deployment.leftover_pids() and not deployment.open_ports()
        if killed:
            print(f"killed with SIGKILL: {killed}")


def wait_for_serialized_deadline(deployment, timeout: float = RUN_TIMEOUT) -> None:
    """Wait until the DAG's latest serialized form, the one the scheduler creates runs from,
    has its Deadline Alert: after a `dags test`, the DAG processor's next parse writes it back."""
    give_up_at = time.monotonic() + timeout
    while not deployment.query(
        "select data::json->'dag'->'deadline' from serialized_dag where dag_id = %s "
        "order by created_at desc limit 1",
        (DAG_ID,),
    )[0][0]:
        deployment.check_alive()
        assert time.monotonic() < give_up_at, f"the serialized DAG has no deadline after {timeout:.0f}s"
        time.sleep(1)


def wait_for_lines(path: Path, pattern: str, deployment, timeout: float = RUN_TIMEOUT) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        found = [line for line in lines if re.search(pattern, line)]
        if found:
            return found
        deployment.check_alive()
        assert time.monotonic() < deadline, (
            f"no line matching {pattern!r} in {path} after {timeout:.0f}s: {lines}\n--- triggerer\n"
            + deployment.output("triggerer").read_text(errors="replace")[-3000:]
        )
        time.sleep(1)


def test_the_first_night_full_refresh_then_unpause_runs_the_latest_interval_green(oncall_deployment):
    deployment, _, _ = oncall_deployment
    runs = deployment.query(
        "select run_type, state, conf from dag_run where dag_id = %s order by id", (DAG_ID,)
    )
    assert runs[0][:2] == ("manual", "success"), runs  # `airflow dags test`, while paused
    # Unpaused after it: the latest interval runs at once, into a target with every history.
    ((run_id, state, *_),) = deployment.wait_for_runs(
        "dag_run.dag_id = %s and dag_run.run_type = 'scheduled'", (DAG_ID,), 1, timeout=2 * RUN_TIMEOUT
    )
    assert state == "success", deployment.task_states([run_id])


def test_a_late_nightly_run_reaches_the_notifier_with_the_run_and_how_late(oncall_deployment):
    deployment, notified, _ = oncall_deployment
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # Unpaused with catchup off: the latest interval (yesterday) runs at once, 3 s allowed.
    interval_start = today - timedelta(days=1)
    run_id = f"scheduled__{today.isoformat()}"  # a scheduled run's id carries its run-after
    (line,) = wait_for_lines(notified, r"^TRACKING_SYNC LATE ", deployment)
    assert f"dag={DAG_ID} run={run_id} " in line, line
    assert f"interval={interval_start.isoformat()} -> {today.isoformat()} " in line, line
    late = datetime.now(UTC) - today
    hours = int(late.total_seconds() // 3600)
    match = re.search(
        r"not finished (\d+)h (\d+)m after its interval ended \(allowed 3s, deadline (\S+)\)", line
    )
    assert match, line
    assert int(match.group(1)) in (hours - 1, hours), line  # minutes may tick over meanwhile
    assert datetime.fromisoformat(match.group(3)) == today + timedelta(seconds=3)
    missed = deployment.query(
        "select deadline.missed from deadline join dag_run on dag_run.id = deadline.dagrun_id "
        "where dag_run.run_id = %s",
        (run_id,),
    )
    assert missed == [(True,)], missed


def test_a_validated_load_publishes_assets_a_downstream_dag_sees(oncall_deployment, target_schema_of_test):
    deployment, _, consumed = oncall_deployment
    schema = target_schema_of_test
    conf = {"mode": "full_refresh", "target_schema": schema}
    manual_runs = "select run_id from dag_run where dag_id = %s and run_type = 'manual'"
    before = set(deployment.query(manual_runs, (DAG_ID,)))  # the first night's full refresh
    deployment.cli("dags", "trigger", DAG_ID, "--conf", json.dumps(conf))
    ((run_id,),) = set(deployment.query(manual_runs, (DAG_ID,))) - before
    ((_, state, *_),) = deployment.wait_for_runs("dag_run.run_id = %s", (run_id,), 1, timeout=2 * RUN_TIMEOUT)
    assert state == "success", deployment.task_states([run_id])

    lines = wait_for_lines(consumed, f'"target_schema": "{schema}"', deployment)
    events = [json.loads(line) for line in lines]
    assert [event["asset"] for event in events] == ["redshift_default.tracking.action"], events
    extra = events[0]["extra"]
    assert extra == {
        "dag_id": DAG_ID,
        "run_id": run_id,
        "mode": "full_refresh",
        "target_schema": schema,
        "data_interval_start": None,  # a full refresh moves every row, not an interval
        "data_interval_end": None,
        "validated_up_to": extra["validated_up_to"],
        "validation": "full",
        "action_load": "full",
        "table": "action",
        "rows_staged": SOURCE_ROWS,
        "rows_inserted": SOURCE_ROWS,
        "rows_carried": 0,
    }
    assert datetime.fromisoformat(extra["validated_up_to"]) <= datetime.now(UTC)
    # The action_type event of the same run is in the metadata DB with its own counts.
    rows = deployment.query(
        "select asset.name, asset_event.extra from asset_event join asset on asset.id = asset_event.asset_id "
        "where asset_event.source_run_id = %s order by asset.name",
        (run_id,),
    )
    assert [name for name, _ in rows] == [
        "redshift_default.tracking.action",
        "redshift_default.tracking.action_type",
    ]
    action_type = rows[1][1] if isinstance(rows[1][1], dict) else json.loads(rows[1][1])
    assert action_type["table"] == "action_type" and action_type["rows_staged"] > 0
    assert action_type["run_id"] == run_id
