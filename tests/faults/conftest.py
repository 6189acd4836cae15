"""Fault-suite fixtures: the same real DAG, stack and connections as the end-to-end tests,
plus DAG runs in a killable subprocess and a target loaded from a small demo data set."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime

import psycopg2
import pytest

from tests.dag_helpers import run_dag
from tests.e2e.conftest import pipeline_dag, pipeline_env, pipeline_target, source, target  # noqa: F401
from tests.faults.utils import DagRunParent, DagRunProcess, copy_airflow_home


@pytest.fixture
def backend_dsn(stack):
    """The PostgreSQL database behind the Redshift stand-in, where its locks can be seen and held."""
    return stack.redshift.backend_dsn()


@pytest.fixture(scope="module")
def synced(pipeline_dag, stack):  # noqa: F811 - the fixture imported above
    """Small demo data over 2025-03-01..03-07, fully loaded: target == source. Once per module,
    and only when the target differs from the source (a module before may have left them equal)."""
    from devstack.demo_data import generate
    from tests.pipeline_helpers import source_rows, target_rows

    with (
        closing(psycopg2.connect(stack.source_dsn)) as source_db,
        closing(psycopg2.connect(stack.redshift.dsn())) as target_db,
    ):
        try:
            rows = source_rows(source_db)
            if len(rows) > 1_000 and rows == target_rows(target_db):
                return pipeline_dag
        except psycopg2.Error:  # no target table yet
            pass
    generate(stack.source_dsn, rows=3_000, seed=5, users=60, period_start="2025-03-01", period_days=7)
    run_dag(pipeline_dag, logical_date=datetime(2025, 3, 8, tzinfo=UTC), conf={"mode": "full_refresh"})
    return pipeline_dag


@pytest.fixture(scope="module")
def dag_run_parent(airflow_db, pipeline_env, tmp_path_factory):  # noqa: F811
    """The warm parent process that forks the module's killable DAG runs; its ~15-30 s warm-up
    starts with the module. Every run it forked, and itself, are killed at teardown."""
    parent = DagRunParent(copy_airflow_home(airflow_db, tmp_path_factory.mktemp("dag-runs")))
    try:
        yield parent
    finally:
        parent.stop()


@pytest.fixture
def dag_run_process(dag_run_parent):
    """start(logical_date, conf, run_after=None): one dag.test() run in a subprocess (a child of
    the warm parent)."""
    from tracking_sync.core.params import DEFAULT_PARAMS

    def start(
        logical_date: datetime, conf: dict | None = None, run_after: datetime | None = None
    ) -> DagRunProcess:
        return dag_run_parent.start(logical_date, DEFAULT_PARAMS | (conf or {}), run_after)

    return start
