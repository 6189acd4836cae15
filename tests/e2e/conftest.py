"""End-to-end fixtures: the real DAG run with dag.test() against the local stack."""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from tests.dag_helpers import load_dag


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
    return load_dag()


@pytest.fixture
def source(stack):
    connection = psycopg2.connect(stack.source_dsn)
    yield connection
    connection.close()


@pytest.fixture
def target(stack):
    """A psycopg2 connection to the Redshift stand-in (it speaks the PostgreSQL protocol), as
    its administrator: to read anything and to inject faults the pipeline's user may not."""
    connection = psycopg2.connect(stack.redshift.dsn())
    yield connection
    connection.close()


@pytest.fixture
def pipeline_target(stack):
    """The Redshift stand-in as the pipeline's user (what the DAG connects as): a test that sets
    up what the pipeline itself would have made (its schema, tables, staging tables) does it
    through this, so that the pipeline owns them as it would."""
    connection = psycopg2.connect(stack.redshift_user_dsn)
    yield connection
    connection.close()
