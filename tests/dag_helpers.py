"""Loading and running the DAG in tests: one way, shared by every test that needs it."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from tracking_sync.core.names import DAG_ID

# What tests that need Airflow's real scheduler start (no deferrable task: no triggerer).
COMPONENTS = ("api-server", "dag-processor", "scheduler")
STARTUP_TIMEOUT = 180  # components healthy and the DAG parsed; ~35 s here
RUN_TIMEOUT = 240  # per wait; here a full refresh takes ~15 s, a 3-day backfill ~25 s
STOP_TIMEOUT = 30  # SIGINT to SIGKILL


def load_dag(dag_id: str = DAG_ID, dag_folder: str | Path | None = None, *, retries: int = 0):
    """The DAG as the DAG processor sees it (through DagBag, from the configured dags folder),
    with every task's retries set to `retries` (a retry would wait its retry_delay inside
    dag.test(): minutes, and SIGTERM does not stop it) and no deadline."""
    from airflow.dag_processing.dagbag import DagBag

    folder = dag_folder or os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    bag = DagBag(dag_folder=str(folder))
    assert not bag.import_errors, f"import errors in {folder}: {bag.import_errors}"
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"no DAG {dag_id} in {folder}: {sorted(bag.dag_ids)}"
    for task in dag.tasks:
        task.retries = retries
    # Airflow 3.3's dag.test() cannot mark a run of a DAG with a Deadline Alert successful
    # (tracking_sync.oncall.deadlines); the alert is shown through the real scheduler instead.
    dag.deadline = None
    return dag


def run_dag(
    dag,
    *,
    logical_date: datetime,
    conf: dict | None = None,
    expect: str = "success",
    run_after: datetime | None = None,
):
    """One dag.test() run; asserts its final state (dag.test() does not raise on failure).
    dag.test() names the run manual__<run_after> (default: now): the same `run_after` makes
    a rerun of the same run id, as a retry or a clear of the run would be."""
    # Every param explicitly: dag.test() runs the tasks in this process on this DAG object,
    # whose params an earlier run's conf was merged into.
    from tracking_sync.core.params import DEFAULT_PARAMS

    conf = DEFAULT_PARAMS | (conf or {})
    run = dag.test(logical_date=logical_date, run_conf=conf, run_after=run_after)
    assert run.state == expect, f"run {logical_date} {conf}: {run.state}, expected {expect}"
    return run


def airflow_cli(deployment, argv: list[str]) -> str:
    """Run a printed `airflow ...` command line (split) against the deployment."""
    assert argv[0] == "airflow", f"not an airflow command: {argv}"
    return deployment.cli(*argv[1:])


def backfill_create(deployment, *args: str) -> int:
    """`airflow backfill create <args>`; returns the new backfill's id."""
    return new_backfill(deployment, lambda: deployment.cli("backfill", "create", *args))


def new_backfill(deployment, create) -> int:
    """Call `create` (which makes one backfill) and return that backfill's id."""
    before = {row[0] for row in deployment.query("select id from backfill")}
    create()
    (backfill_id,) = {row[0] for row in deployment.query("select id from backfill")} - before
    return backfill_id


def wait_for_backfill(
    deployment,
    backfill_id: int,
    runs: int,
    *,
    until_completed: bool,
    timeout: float = RUN_TIMEOUT,
    may_retry: tuple[str, ...] = (),
) -> list[tuple]:
    """Wait for the backfill's runs; with until_completed, also until the scheduler marks
    the backfill completed (wait_for_backfill_completed)."""
    finished = deployment.wait_for_runs(
        "dag_run.backfill_id = %s", (backfill_id,), runs, timeout=timeout, may_retry=may_retry
    )
    if until_completed:
        wait_for_backfill_completed(deployment, backfill_id, timeout=timeout)
    return finished


def wait_for_backfill_completed(deployment, backfill_id: int, *, timeout: float = RUN_TIMEOUT) -> None:
    """Until the scheduler marks the backfill completed, as another backfill of the DAG can be
    created only then. It checks every 30 s (a fixed timer in Airflow 3.3): a test that has other
    work to do meanwhile waits after it."""
    started = time.monotonic()
    while not deployment.query(
        "select 1 from backfill where id = %s and completed_at is not null", (backfill_id,)
    ):
        assert time.monotonic() < started + timeout, f"backfill {backfill_id} not marked completed"
        deployment.check_alive()
        time.sleep(0.5)
    deployment.timings.append(f"backfill {backfill_id} marked completed: {time.monotonic() - started:.1f}s")
