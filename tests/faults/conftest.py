"""Fault-suite fixtures: the same real DAG, stack and connections as the end-to-end tests,
plus DAG runs in a killable subprocess and a target loaded from a small demo data set."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import pipeline_dag, pipeline_env, run_dag, source, target  # noqa: F401
from tests.faults.utils import DagRunProcess, copy_airflow_home


@pytest.fixture
def backend_dsn(stack):
    """The PostgreSQL database behind the Redshift stand-in, where its locks can be seen and held."""
    return stack.postgres.dsn(stack.redshift.database)


@pytest.fixture(scope="module")
def synced(pipeline_dag, stack):  # noqa: F811 - the fixture imported above
    """Small demo data over 2025-03-01..03-07, fully loaded: target == source (once per module)."""
    from devstack.demo_data import generate

    generate(stack.source_dsn, rows=3_000, seed=5, users=60, period_start="2025-03-01", period_days=7)
    run_dag(pipeline_dag, logical_date=datetime(2025, 3, 8, tzinfo=UTC), conf={"mode": "full_refresh"})
    return pipeline_dag


@pytest.fixture
def dag_run_process(airflow_db, pipeline_env, tmp_path):  # noqa: F811
    """Start a dag.test() run in a subprocess of its own; whatever is left is killed at teardown."""
    started: list[DagRunProcess] = []

    def start(logical_date: datetime, conf: dict | None = None) -> DagRunProcess:
        from tracking_sync.params import DEFAULT_PARAMS

        home = copy_airflow_home(airflow_db, tmp_path / f"airflow-home-{len(started)}")
        run = DagRunProcess(home, logical_date, DEFAULT_PARAMS | (conf or {}))
        started.append(run)
        return run

    yield start
    for run in started:
        run.kill()
