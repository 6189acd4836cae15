"""Session-wide test harness: an isolated AIRFLOW_HOME and the local stack.

AIRFLOW_HOME must be set before anything imports airflow, so it is set here at
import time (pytest imports the root conftest before any test module).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Records what the stand-in and the source receive, for the grammar gate (tests/statement_gate.py)
pytest_plugins = ("tests.statement_gate",)

_airflow_home = tempfile.mkdtemp(prefix="airflow-home-")
os.environ["AIRFLOW_HOME"] = _airflow_home
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_airflow_home, ignore_errors=True)


# --- test tiers ------------------------------------------------------------------------------
# `make test-unit` runs `pytest -m "not integration"` in seconds with nothing but the venv;
# `make test` runs everything. Which tier a test is in is decided here, from what it uses, so a
# new test cannot land in the unit tier by forgetting a marker.

# Fixtures that start the local stack, Airflow, a browser or a Docker engine (here or in a
# sub-conftest). item.fixturenames is the test's whole fixture closure, so a fixture built on
# one of these (source, redshift, pipeline_dag, page, compose, ...) counts too.
STACK_FIXTURES = frozenset(
    {
        "stack",
        "stack_env",
        "airflow_db",
        "airflow_deployment",
        "target_schema_of_test",
        "chromium",
        "docker_engine",
    }
)
# Folders that are integration by nature: every test in them runs the pipeline, Airflow or a
# browser against the stack, whatever its fixtures.
INTEGRATION_DIRS = frozenset({"e2e", "faults", "ui"})
TESTS_DIR = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("integration"):
            continue
        in_integration_dir = item.path.is_relative_to(TESTS_DIR) and (
            item.path.relative_to(TESTS_DIR).parts[0] in INTEGRATION_DIRS
        )
        if in_integration_dir or STACK_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.integration)


# The guard behind the rule: a test without the marker that spawns a server anyway (LocalPostgres
# started by hand, `python -m devstack up`, a fixture fetched with getfixturevalue) fails, in any
# run, instead of quietly putting PostgreSQL back into the unit tier.
STACK_PROGRAMS = frozenset({"initdb", "pg_ctl", "postgres", "redis-server", "chromium", "docker", "dockerd"})
STACK_MODULES = frozenset({"devstack", "airflow"})  # python -m devstack[.s3|.redshift], -m airflow

_unit_test = None  # the unmarked test whose setup or call is running, if any


def _stack_program(args) -> str | None:
    if isinstance(args, str | bytes | os.PathLike):
        argv = os.fsdecode(args).split()  # a shell line or one program
    else:
        argv = [os.fsdecode(arg) for arg in args]
    for i, arg in enumerate(argv):
        # the program, or one run through a wrapper (runuser -u postgres -- /usr/lib/.../initdb)
        if (i == 0 or os.sep in arg) and os.path.basename(arg) in STACK_PROGRAMS:
            return arg
        if arg == "-m" and i + 1 < len(argv) and argv[i + 1].split(".")[0] in STACK_MODULES:
            return f"python -m {argv[i + 1]}"
    return None


class StackInUnitTest(RuntimeError):
    pass


_popen_init = subprocess.Popen.__init__


def _guarded_popen_init(self, args, *more, **kwargs):
    if _unit_test is not None and (program := _stack_program(args)):
        raise StackInUnitTest(
            f"{_unit_test.nodeid} starts the local stack ({program}): mark it integration "
            "(@pytest.mark.integration), or use the stack fixtures, which mark it"
        )
    _popen_init(self, args, *more, **kwargs)


subprocess.Popen.__init__ = _guarded_popen_init


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures are set up
def pytest_runtest_setup(item):
    global _unit_test
    _unit_test = None if item.get_closest_marker("integration") else item


@pytest.hookimpl(tryfirst=True)  # teardown may stop a session's stack started by an earlier test
def pytest_runtest_teardown(item):
    global _unit_test
    _unit_test = None


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


@pytest.fixture
def airflow_deployment(stack, tmp_path):
    """A running Airflow (api-server, dag-processor, scheduler) on its own AIRFLOW_HOME and
    metadata database, the DAG unpaused, no scheduled runs (manual runs and backfills only);
    every process stopped, no port left open and the database dropped afterwards."""
    import uuid

    import psycopg2

    from devstack.airflow import AirflowDeployment
    from tests.dag_helpers import COMPONENTS, DAG_ID, STARTUP_TIMEOUT, STOP_TIMEOUT

    staging = tmp_path / "staging"
    staging.mkdir()
    deployed = AirflowDeployment(
        tmp_path / "airflow-home",
        postgres=stack.postgres,
        components=COMPONENTS,
        startup_timeout=STARTUP_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
        env={
            **stack.env(),
            "TRACKING_SYNC_STAGING_DIR": str(staging),
            "TRACKING_SYNC_PREFIX": f"deployment-{uuid.uuid4().hex[:8]}",
            "TRACKING_SYNC_PART_MB": "1",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            # No scheduled runs: unpaused, the DAG would get its latest nightly run into the
            # default schema. Manual runs and backfills still run.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        },
    )
    try:
        deployed.start(dag_ids=(DAG_ID,))
        # The DAG starts paused (is_paused_upon_creation): nothing of it runs before this.
        # The REST call the UI's toggle makes (the CLI's own start-up takes ~2 s).
        deployed.api("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        yield deployed
    finally:
        hard_killed = deployed.stop()
        print("\n".join(deployed.timings))
        left = deployed.leftover_pids()
        open_ports = deployed.open_ports()
        server = psycopg2.connect(stack.postgres.dsn())
        try:
            with server.cursor() as cursor:
                cursor.execute("select 1 from pg_database where datname = %s", (deployed.database,))
                assert cursor.fetchall() == [], f"metadata database {deployed.database} not dropped"
        finally:
            server.close()
        assert not left and not open_ports, f"left behind: pids {left}, ports {open_ports}"
        if hard_killed:
            # Not a failure of the pipeline, but worth seeing in the report.
            print(f"killed with SIGKILL: {hard_killed}")


@pytest.fixture
def target_schema_of_test(stack):
    """A Redshift schema of the test's own, dropped afterwards with its capture slot."""
    import uuid

    import psycopg2

    schema = f"test_{uuid.uuid4().hex[:8]}"
    yield schema
    source = psycopg2.connect(stack.source_dsn)
    source.autocommit = True
    try:
        with source.cursor() as cursor:  # its capture slot (tracking_sync.capture.slot), if any
            cursor.execute(
                "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = %s",
                (f"tracking_sync_{schema}",),
            )
    finally:
        source.close()
    backend = psycopg2.connect(stack.redshift.backend_dsn())
    backend.autocommit = True
    try:
        with backend.cursor() as cursor:
            cursor.execute(f"drop schema if exists {schema} cascade")
    finally:
        backend.close()
