"""`airflow dags test` as a user types it, in a subprocess against the local stack, with the
deployment's default settings (the Deadline Alert on): its exit code says how the run ended.

Airflow 3.3.2's dag.test() could not finish a successful run of a DAG with a Deadline Alert
(exit 1 after every task succeeded: see tracking_sync.oncall.deadlines), so the README's first-night
command needed TRACKING_SYNC_DEADLINE_MINUTES=off. The environment is the other e2e tests'
(tests/conftest.py, pipeline_env): the session's AIRFLOW_HOME and metadata DB, the dags and
plugins folders, the stack's AIRFLOW_CONN_* and the TRACKING_SYNC_* settings.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.dag_helpers import DAG_ID, RUN_TIMEOUT
from tests.pipeline_helpers import assert_same_rows, source_rows, target_rows
from tracking_sync.oncall.deadlines import DEADLINE_ENV

pytestmark = pytest.mark.integration

# The console script next to this interpreter: the `airflow` a user runs.
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
NIGHTLY_LOGICAL_DATE = "2025-03-05"  # moves 2025-03-04


@pytest.fixture(scope="module")
def demo_rows(stack):
    from devstack.demo_data import generate

    return generate(stack.source_dsn, rows=5_000, seed=17, users=50, period_start="2025-03-01", period_days=5)


@pytest.fixture
def dags_test(pipeline_env):
    """Run `airflow dags test <args>` with the e2e environment and the default deadline;
    returns (exit code, output). A hung run (a task waiting out a retry delay) is killed
    with its process group at RUN_TIMEOUT."""
    env = {name: value for name, value in os.environ.items() if name != DEADLINE_ENV}
    env.pop("PYTEST_CURRENT_TEST", None)

    def run(*args: str) -> tuple[int, str]:
        started = time.monotonic()
        process = subprocess.Popen(
            [AIRFLOW, "dags", "test", DAG_ID, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            pytest.fail(
                f"airflow dags test {' '.join(args)} still running after {RUN_TIMEOUT}s:\n{output[-4000:]}"
            )
        print(
            f"airflow dags test {DAG_ID} {' '.join(args)}: exit {process.returncode}, "
            f"{time.monotonic() - started:.1f}s"
        )
        return process.returncode, output

    return run


def test_the_first_night_full_refresh_and_a_nightly_run_exit_0(dags_test, demo_rows, source, target):
    # The README's first night, as typed: no setting to turn the deadline off.
    code, output = dags_test("--conf", json.dumps({"mode": "full_refresh"}))
    assert code == 0, f"full refresh exited {code}:\n{output[-4000:]}"
    assert_same_rows(source_rows(source), target_rows(target), "after `airflow dags test` full refresh")

    code, output = dags_test(NIGHTLY_LOGICAL_DATE)
    assert code == 0, f"nightly run exited {code}:\n{output[-4000:]}"
    assert_same_rows(source_rows(source), target_rows(target), "after the nightly `airflow dags test`")


def test_a_failed_run_exits_non_zero(dags_test, demo_rows):
    # A value Airflow's Param pattern accepts and plan_run refuses: it fails at once
    # (InvalidParams needs a fix: no retries), everything after it is upstream_failed.
    code, output = dags_test(NIGHTLY_LOGICAL_DATE, "--conf", json.dumps({"target_schema": "public"}))
    assert code != 0, f"a failed run exited 0:\n{output[-4000:]}"
    assert "target_schema='public' is a system or shared schema" in output, output[-4000:]
    assert "DagRun failed" in output, output[-4000:]
