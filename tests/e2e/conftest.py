"""End-to-end fixtures: the real DAG run with dag.test() against the local stack."""

from __future__ import annotations

import os
import uuid
from datetime import datetime

import psycopg2
import pytest


@pytest.fixture(scope="session")
def pipeline_env(stack_env, airflow_db, tmp_path_factory):
    """Pipeline settings for the e2e runs: a staging dir of the session, small parts."""
    settings = {
        "TRACKING_SYNC_STAGING_DIR": str(tmp_path_factory.mktemp("staging")),
        "TRACKING_SYNC_PREFIX": f"e2e-{uuid.uuid4().hex[:8]}",
        "TRACKING_SYNC_PART_MB": "1",  # several parts even for a day of demo data
    }
    with pytest.MonkeyPatch.context() as patch:  # restores the environment afterwards
        for name, value in settings.items():
            patch.setenv(name, value)
        yield settings


@pytest.fixture(scope="session")
def pipeline_dag(pipeline_env):
    """The postgres_to_redshift DAG as the DAG processor sees it, with retries off for tests."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("postgres_to_redshift")
    for task in dag.tasks:
        task.retries = 0  # a retry would wait retry_delay inside dag.test()
    return dag


@pytest.fixture
def source(stack):
    connection = psycopg2.connect(stack.source_dsn)
    yield connection
    connection.close()


@pytest.fixture
def target(stack):
    """A psycopg2 connection to the Redshift stand-in (it speaks the PostgreSQL protocol)."""
    connection = psycopg2.connect(stack.redshift.dsn())
    yield connection
    connection.close()


def run_dag(dag, *, logical_date: datetime, conf: dict | None = None, expect: str = "success"):
    """One dag.test() run; asserts its final state (dag.test() does not raise on failure)."""
    # Every param explicitly: dag.test() runs the tasks in this process on this DAG object,
    # whose params an earlier run's conf was merged into.
    from tracking_sync.params import DEFAULT_PARAMS

    conf = DEFAULT_PARAMS | (conf or {})
    run = dag.test(logical_date=logical_date, run_conf=conf)
    assert run.state == expect, f"run {logical_date} {conf}: {run.state}, expected {expect}"
    return run
