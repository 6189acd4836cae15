"""Issue 9 on a distributed engine: Airflow's CeleryExecutor with two workers that share no disk.

devstack.celery_cluster.CeleryDeployment runs Redis (Debian's redis-server) as the broker, the
result backend on the metadata PostgreSQL, an api-server, a dag-processor, a scheduler and TWO
`airflow celery worker` processes. Each worker is a machine of its own as far as the pipeline
can tell: its own AIRFLOW_HOME, TMPDIR and TRACKING_SYNC_STAGING_DIR, its own hostname.

The spread is not left to chance: a cluster policy puts every `export_*` task on the queue
`export`, which only worker-a consumes, and every `upload_*` task on `upload`, which only
worker-b consumes (the other tasks go to `default`, which both consume). So every hand-over
from an export to its upload crosses machines -- the case that fails when the parts pass
through a local folder -- and the parts can only reach the upload through the S3 staging
area (TRACKING_SYNC_STAGING_URL=s3://...).

A partitioned full refresh (partitions=4: four export_action and four upload_action task
instances) and then a nightly (incremental) run of a day with late corrections both succeed,
validate included; the target equals the source row for row; the task instances record both
workers' hostnames, each export on worker-a and each upload on worker-b. The nightly run is
the scheduler's run of one day's interval made by a one-day `airflow backfill create` rather
than by the clock, so that it can carry this test's own target schema (a scheduled run writes
into the default one) and a day of the demo data.

Teardown stops every process (the workers, Redis and the task processes too), also when the
test fails, and checks that no process, port or metadata database is left.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from devstack import demo_data
from devstack.celery_cluster import CeleryDeployment, CeleryWorker
from devstack.redis_server import RedisNotInstalled, redis_server_binary
from tests.dag_helpers import RUN_TIMEOUT, STARTUP_TIMEOUT, STOP_TIMEOUT, new_backfill, wait_for_backfill
from tests.pipeline_helpers import (
    assert_same_rows,
    change_source_within,
    fetch_rows,
    source_rows,
    target_rows,
)
from tracking_sync.core.names import DAG_ID

pytestmark = pytest.mark.integration

PARTITIONS = 4
ROWS, USERS = 10_000, 100  # with 1 MB parts: a part or two in every partition
DATA_START, DATA_DAYS = "2025-03-01", 7
FULL_REFRESH_AT = datetime(2025, 3, 10, tzinfo=UTC)  # a label: a manual run validates up to the wall clock
NIGHTLY_DAY = datetime(2025, 3, 5, tzinfo=UTC)  # the nightly run moves [NIGHTLY_DAY, +1 day)
# worker-a runs every export, worker-b every upload; both run the rest.
EXPORTER = CeleryWorker("worker-a", queues=("default", "export"), concurrency=2)
UPLOADER = CeleryWorker("worker-b", queues=("default", "upload"), concurrency=2)
TASK_QUEUES = {"export_": "export", "upload_": "upload"}


@pytest.fixture
def celery_deployment(stack, tmp_path):
    """The Celery deployment, the DAG unpaused, no scheduled runs; everything stopped after."""
    try:
        redis_server_binary()
    except RedisNotInstalled as missing:
        pytest.skip(str(missing))
    prefix = f"celery-{uuid.uuid4().hex[:8]}"
    deployment = CeleryDeployment(
        tmp_path / "airflow-home",
        postgres=stack.postgres,
        workers=(EXPORTER, UPLOADER),
        task_queues=TASK_QUEUES,
        startup_timeout=STARTUP_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
        env={
            **stack.env(),
            "TRACKING_SYNC_PREFIX": prefix,
            "TRACKING_SYNC_STAGING_URL": f"s3://{stack.s3.bucket}/{prefix}-staging",
            "TRACKING_SYNC_PART_MB": "1",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            # No scheduled runs: the latest nightly interval would run into the default schema.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # The DAG file does not change during the test: parsed once, not every 30 s (CPU
            # that the tasks need on a 2-core machine).
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        },
    )
    try:
        deployment.start(dag_ids=(DAG_ID,))
        deployment.api("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})  # it starts paused
        yield deployment
    finally:
        hard_killed = deployment.stop()
        print("\n".join(deployment.timings))
        left, open_ports = deployment.leftover_pids(), deployment.open_ports()
        server = psycopg2.connect(stack.postgres.dsn())
        try:
            dropped = not fetch_rows(
                server, "select 1 from pg_database where datname = %s", (deployment.database,)
            )
        finally:
            server.close()
        assert not left and not open_ports, f"left behind: pids {left}, ports {open_ports}"
        assert dropped, f"metadata database {deployment.database} not dropped"
        if hard_killed:
            print(f"killed with SIGKILL: {hard_killed}")


def _assert_succeeded(deployment: CeleryDeployment, run: tuple) -> None:
    states = deployment.task_states([run[0]])[run[0]]
    assert run[1] == "success", f"{run[0]}: {run[1]}: {states}"
    assert states.get("validate") == "success" and set(states.values()) == {"success"}, states


def _full_refresh(deployment: CeleryDeployment, conf: dict) -> tuple:
    """A manual full refresh (REST API, as the UI's Trigger), waited for; (run_id, state, interval)."""
    run_id = f"full_refresh_{uuid.uuid4().hex[:6]}"
    deployment.api(
        "POST",
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        {
            "dag_run_id": run_id,
            "logical_date": FULL_REFRESH_AT.isoformat(),
            "conf": {"mode": "full_refresh", **conf},
        },
    )
    (run,) = deployment.wait_for_runs("dag_run.run_id = %s", (run_id,), 1, timeout=RUN_TIMEOUT)
    _report_timeline(deployment, run[0])
    _assert_succeeded(deployment, run)
    return run


def _nightly_run(deployment: CeleryDeployment, day: datetime, conf: dict) -> tuple:
    """The run of the nightly interval [day, day + 1), made by the scheduler as a one-day
    backfill (a manual trigger's interval follows the wall clock, not the logical date)."""
    body = {
        "dag_id": DAG_ID,
        "from_date": day.isoformat(),
        "to_date": day.isoformat(),
        "max_active_runs": 1,
        "reprocess_behavior": "none",
        "run_backwards": False,
        "dag_run_conf": conf,
    }
    backfill_id = new_backfill(deployment, lambda: deployment.api("POST", "/api/v2/backfills", body))
    (run,) = wait_for_backfill(deployment, backfill_id, 1, until_completed=False, timeout=RUN_TIMEOUT)
    _report_timeline(deployment, run[0])
    _assert_succeeded(deployment, run)
    return run


def _report_timeline(deployment: CeleryDeployment, run_id: str) -> None:
    """Printed (pytest shows it on failure, or with -s): where each task ran and when."""
    rows = deployment.query(
        "select task_id, map_index, hostname, state, "
        "extract(epoch from start_date - queued_dttm), extract(epoch from end_date - start_date), "
        "extract(epoch from end_date - min(queued_dttm) over ()) "
        "from task_instance where dag_id = %s and run_id = %s order by end_date nulls last",
        (DAG_ID, run_id),
    )
    print(f"--- {run_id}: task [map index] worker state: queued->started s, ran s, done at s")
    for task_id, map_index, hostname, state, waited, ran, done in rows:
        index = f"[{map_index}]" if map_index >= 0 else ""
        print(
            f"{task_id}{index:5} {hostname or '-':9} {state}: {waited or 0:5.1f} {ran or 0:5.1f} {done or 0:6.1f}"
        )


def _task_instances(deployment: CeleryDeployment, run_id: str) -> list[tuple]:
    """(task_id, map_index, hostname, queue, state) of every task instance of the run."""
    return deployment.query(
        "select task_id, map_index, hostname, queue, state from task_instance "
        "where dag_id = %s and run_id = %s order by task_id, map_index",
        (DAG_ID, run_id),
    )


def _assert_target_equals_source(source, target, schema: str, what: str) -> None:
    assert_same_rows(source_rows(source), target_rows(target, schema), f"action {what}")
    columns = "id, code, name, is_async"
    assert_same_rows(
        fetch_rows(source, f"select {columns} from action_type order by id"),
        fetch_rows(target, f"select {columns} from {schema}.action_type order by id"),
        f"action_type {what}",
    )


def _assert_exports_and_uploads_crossed_workers(task_instances: list[tuple], what: str) -> None:
    for task_id, map_index, hostname, queue, _ in task_instances:
        for prefix, worker in (("export_", EXPORTER), ("upload_", UPLOADER)):
            if task_id.startswith(prefix):
                assert (hostname, queue) == (worker.name, TASK_QUEUES[prefix]), (
                    f"{what}: {task_id}[{map_index}] ran on {hostname!r} from queue {queue!r}, "
                    f"expected {worker.name!r} from {TASK_QUEUES[prefix]!r}"
                )


def test_celery_workers_without_a_shared_disk_run_a_partitioned_full_refresh_and_a_nightly_run(
    celery_deployment, stack, target_schema_of_test
):
    deployment, schema = celery_deployment, target_schema_of_test
    demo_data.generate(
        stack.source_dsn, rows=ROWS, seed=9, users=USERS, period_start=DATA_START, period_days=DATA_DAYS
    )
    source = psycopg2.connect(stack.source_dsn)
    target = psycopg2.connect(stack.redshift.dsn())
    try:
        full = _full_refresh(deployment, {"target_schema": schema, "partitions": PARTITIONS})
        full_tis = _task_instances(deployment, full[0])
        for mapped in ("export_action", "upload_action"):
            indexes = [map_index for task_id, map_index, *_ in full_tis if task_id == mapped]
            assert indexes == list(range(PARTITIONS)), (
                f"{mapped}: one task instance per partition: {full_tis}"
            )
        _assert_target_equals_source(source, target, schema, "after the partitioned full refresh")

        change_source_within(source, NIGHTLY_DAY)
        assert source_rows(source) != target_rows(target, schema), (
            "the late corrections differ from the target"
        )
        nightly = _nightly_run(deployment, NIGHTLY_DAY, {"target_schema": schema})
        interval = tuple(moment.astimezone(UTC) for moment in nightly[2:4])
        assert interval == (NIGHTLY_DAY, NIGHTLY_DAY + timedelta(days=1)), (
            f"the nightly run's interval: {nightly}"
        )
        _assert_target_equals_source(source, target, schema, "after the nightly run")
    finally:
        source.close()
        target.close()

    nightly_tis = _task_instances(deployment, nightly[0])
    _assert_exports_and_uploads_crossed_workers(full_tis, "full refresh")
    _assert_exports_and_uploads_crossed_workers(nightly_tis, "nightly run")
    hostnames = {hostname for _, _, hostname, _, _ in full_tis + nightly_tis}
    assert hostnames == {EXPORTER.name, UPLOADER.name}, f"task instances ran on {hostnames}"

    # Nothing went through a worker's own staging folder: the parts travelled through S3.
    for worker in (EXPORTER, UPLOADER):
        staging = deployment.worker_home(worker.name) / "staging"
        assert not any(staging.rglob("*")), f"{worker.name}'s staging folder: {sorted(staging.rglob('*'))}"
    # Every task's log is on the worker that ran it, and no secret is in any of them.
    logs = deployment.task_log_files()
    assert all(logs.values()), f"task logs on each worker: {logs}"
    secrets = (stack.s3.secret_access_key, stack.postgres.password, stack.redshift.password)
    outputs = [path for paths in logs.values() for path in paths]
    outputs += sorted(deployment.home.glob("*.out"))  # each component's and worker's output
    for path in outputs:
        text = path.read_text(errors="replace")
        assert not any(secret in text for secret in secrets), f"a secret appears in {path}"
