"""Loading and running the DAG in tests: one way, shared by every test that needs it."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

DAG_ID = "postgres_to_redshift"


def load_dag(dag_id: str = DAG_ID, dag_folder: str | Path | None = None, *, retries: int = 0):
    """The DAG as the DAG processor sees it (through DagBag, from the configured dags folder),
    with every task's retries set to `retries`: a retry would wait its retry_delay inside
    dag.test() (minutes, and SIGTERM does not stop it)."""
    from airflow.dag_processing.dagbag import DagBag

    folder = dag_folder or os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    bag = DagBag(dag_folder=str(folder))
    assert not bag.import_errors, f"import errors in {folder}: {bag.import_errors}"
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"no DAG {dag_id} in {folder}: {sorted(bag.dag_ids)}"
    for task in dag.tasks:
        task.retries = retries
    return dag


def run_dag(dag, *, logical_date: datetime, conf: dict | None = None, expect: str = "success"):
    """One dag.test() run; asserts its final state (dag.test() does not raise on failure)."""
    # Every param explicitly: dag.test() runs the tasks in this process on this DAG object,
    # whose params an earlier run's conf was merged into.
    from tracking_sync.params import DEFAULT_PARAMS

    conf = DEFAULT_PARAMS | (conf or {})
    run = dag.test(logical_date=logical_date, run_conf=conf)
    assert run.state == expect, f"run {logical_date} {conf}: {run.state}, expected {expect}"
    return run
