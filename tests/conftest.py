"""Session-wide test harness: an isolated AIRFLOW_HOME and the local stack.

AIRFLOW_HOME must be set before anything imports airflow, so it is set here at
import time (pytest imports the root conftest before any test module).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

_airflow_home = tempfile.mkdtemp(prefix="airflow-home-")
os.environ["AIRFLOW_HOME"] = _airflow_home
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_airflow_home, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db():
    """The Airflow metadata database (SQLite in AIRFLOW_HOME), migrated once per session."""
    from airflow.utils import db

    db.resetdb()
    return _airflow_home


@pytest.fixture(scope="session")
def stack():
    """PostgreSQL source, S3 and the Redshift stand-in, up for the whole session.

    Local processes (devstack.stack.start_stack): no Docker engine needed.
    """
    from devstack.stack import start_stack

    running = start_stack()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def stack_env(stack):
    """The stack's AIRFLOW_CONN_* and settings, exported into this process's environment."""
    with pytest.MonkeyPatch.context() as patch:  # restores the environment afterwards
        for name, value in stack.env().items():
            patch.setenv(name, value)
        yield stack.env()
