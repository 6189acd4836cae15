"""Issue 4 with Airflow's REAL backfill machinery: `airflow backfill create` over a date
range leaves the same target as the nightly runs would, and rerunning it changes nothing.

Not dag.test(): the test starts the real components (api-server, dag-processor, scheduler
with the LocalExecutor) as subprocesses on an AIRFLOW_HOME of its own, with the session's
local stack as PostgreSQL, S3 and Redshift. The test process only runs the CLI
(`airflow db migrate`, `dags trigger`, `backfill create`) and reads the metadata DB to wait.

The metadata DB is a database of its own on the stack's PostgreSQL, not SQLite: with
SQLite, `airflow backfill create` failed in 2 of 4 runs with "database is locked" while
the scheduler was busy (its nested transaction reads, then writes, and SQLite's WAL gives
up at once when another process committed in between), and a failed create leaves an
active backfill behind that blocks the next one for 2 minutes.

Teardown stops every process the test started, also when it fails: SIGINT to each
component's process group, SIGKILL after a timeout, then a sweep for any process still
carrying this deployment's marker in its environment (task processes run in process
groups of their own); it asserts that no such process and none of the ports is left.

The DAG keeps its retries (3, two minutes apart): a task that fails or goes up_for_retry
fails the test at once, with the end of its log, instead of waiting for a retry.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from devstack import demo_data
from devstack.net import free_port, port_is_open
from tests.pipeline_helpers import (
    assert_same_rows,
    change_source_within,
    fetch_rows,
    source_rows,
    target_rows,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "postgres_to_redshift"
MARKER = "TRACKING_SYNC_REAL_BACKFILL_MARKER"  # in the environment of every process started here

# Demo data over 2025-03-01 .. 2025-03-07; the backfill moves 03-03, 03-04 and 03-05.
DATA_START, DATA_DAYS = "2025-03-01", 7
ROWS, USERS = 3_000, 60
D1 = datetime(2025, 3, 3, tzinfo=UTC)
DAYS = [D1 + timedelta(days=n) for n in range(3)]
END = D1 + timedelta(days=3)  # the backfill covers [D1, END)
FULL_REFRESH_AT = datetime(2025, 3, 10, tzinfo=UTC)  # after every row of the demo data

STARTUP_TIMEOUT = 120  # api-server healthy and the DAG parsed; ~20 s here
RUN_TIMEOUT = 240  # per wait; here a full refresh takes ~15 s, a 3-day backfill ~25 s
STOP_TIMEOUT = 30  # SIGINT to SIGKILL
BAD_TASK_STATES = ("failed", "up_for_retry", "upstream_failed", "removed")


def _clean_environment() -> dict[str, str]:
    """This process's environment without the session's Airflow and pipeline settings."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "TRACKING_SYNC_")) and name != "PYTEST_CURRENT_TEST"
    }


class Deployment:
    """Airflow's scheduler, dag-processor and api-server as subprocesses, and its CLI."""

    COMPONENTS = ("api-server", "dag-processor", "scheduler")

    def __init__(self, home: Path, stack_env: dict[str, str], staging_dir: Path, metadata_dsn: str):
        self.home = home
        self.metadata_dsn = metadata_dsn
        self.marker = uuid.uuid4().hex
        self.api_port = free_port()
        self.ports = {
            "AIRFLOW__API__PORT": self.api_port,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": free_port(),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": free_port(),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": free_port(),
        }
        self.prefix = f"real-backfill-{uuid.uuid4().hex[:8]}"
        self.env = {
            **_clean_environment(),
            **stack_env,
            MARKER: self.marker,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_dsn.replace(
                "postgresql://", "postgresql+psycopg2://", 1
            ),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            # No scheduled runs: unpaused, the DAG would get its latest nightly run into the
            # default schema. Manual runs and backfills still run.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'plugins'}",
            "TRACKING_SYNC_STAGING_DIR": str(staging_dir),
            "TRACKING_SYNC_PREFIX": self.prefix,
            "TRACKING_SYNC_PART_MB": "1",
            **{name: str(port) for name, port in self.ports.items()},
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.outputs: dict[str, Path] = {}
        self.timings: list[str] = []  # printed at teardown: shown when the test fails

    # ------------------------------------------------------------------ CLI

    def cli(self, *args: str, timeout: float = 120) -> str:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = result.stdout + result.stderr
        self.timings.append(f"airflow {' '.join(args[:2])}: {time.monotonic() - started:.1f}s")
        with (self.home / "cli-output.log").open("a") as transcript:
            transcript.write(f"$ airflow {' '.join(args)}\n{output}\n")
        assert result.returncode == 0, (
            f"airflow {' '.join(args)} exited {result.returncode}:\n{output[-4000:]}"
        )
        return output

    # ------------------------------------------------------------ components

    def start(self) -> None:
        for name in self.COMPONENTS:
            out = self.home / f"{name}.out"
            self.outputs[name] = out
            with out.open("wb") as sink:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "airflow", name],
                    env=self.env,
                    cwd=self.home,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # a process group of its own, to signal as a whole
                )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(
                    f"airflow {name} exited with {process.returncode}:\n{self.tail(self.outputs[name])}"
                )

    @staticmethod
    def tail(path: Path, chars: int = 4000) -> str:
        return path.read_text(errors="replace")[-chars:] if path.exists() else f"({path} missing)"

    def wait_until_ready(self) -> None:
        """The api-server answers (tasks report to its execution API) and the DAG is parsed."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        url = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
        while True:
            self.check_alive()
            healthy = False
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    healthy = response.status == 200
            except OSError:
                pass
            errors = self.query("select filename, stacktrace from import_error")
            assert not errors, f"DAG import errors: {errors}"
            parsed = self.query("select 1 from serialized_dag where dag_id = %s", (DAG_ID,))
            if healthy and parsed:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not ready after {STARTUP_TIMEOUT}s (api healthy={healthy}, dag parsed={bool(parsed)})\n"
                    + "\n".join(f"--- {n}\n{self.tail(p)}" for n, p in self.outputs.items())
                )
            time.sleep(1)

    def stop(self) -> list[str]:
        """Stop every process started here; return what had to be killed the hard way."""
        killed = []
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, process in self.processes.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(f"airflow {name} (pid {process.pid})")
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the rest of each group, if any
            except ProcessLookupError:
                pass
            process.wait()
        # Task processes run in process groups of their own: sweep by the marker.
        for pid in self.marked_pids():
            killed.append(f"leftover pid {pid}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return killed

    def marked_pids(self) -> list[int]:
        needle = f"{MARKER}={self.marker}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if needle in environ.split(b"\0"):
                pids.append(int(entry.name))
        return pids

    # ------------------------------------------------------------ metadata DB

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        connection = psycopg2.connect(self.metadata_dsn)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()

    def task_log(self, run_id: str, task_id: str, try_number: int) -> str:
        logs = self.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
        path = logs / f"attempt={max(try_number, 1)}.log"
        return self.tail(path, 6000)

    def wait_for_runs(self, where: str, params: tuple, count: int) -> list[tuple]:
        """Wait until `count` runs matching `where` finished; fail at the first bad task."""
        started = time.monotonic()
        deadline = started + RUN_TIMEOUT
        while True:
            self.check_alive()
            bad = self.query(
                "select ti.run_id, ti.task_id, ti.state, ti.try_number from task_instance ti "
                f"join dag_run on dag_run.dag_id = ti.dag_id and dag_run.run_id = ti.run_id where {where} "
                "and ti.state = any(%s)",
                (*params, list(BAD_TASK_STATES)),
            )
            if bad:
                run_id, task_id, state, try_number = bad[0]
                raise AssertionError(
                    f"task {task_id} of {run_id} is {state} (all bad: {bad}); its log:\n"
                    + self.task_log(run_id, task_id, try_number)
                )
            runs = self.query(
                "select run_id, state, data_interval_start, data_interval_end from dag_run "
                f"where {where} order by logical_date",
                params,
            )
            if len(runs) == count and all(state in ("success", "failed") for _, state, *_ in runs):
                self.timings.append(f"{count} run(s) {params}: {time.monotonic() - started:.1f}s")
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"runs not finished after {RUN_TIMEOUT}s: {runs}\n--- scheduler\n"
                    + self.tail(self.outputs["scheduler"])
                )
            time.sleep(1)

    def task_states(self, run_ids: list[str]) -> dict[str, dict[str, str]]:
        rows = self.query(
            "select run_id, task_id, state from task_instance where run_id = any(%s)",
            (list(run_ids),),
        )
        states: dict[str, dict[str, str]] = {}
        for run_id, task_id, state in rows:
            states.setdefault(run_id, {})[task_id] = state
        return states

    def backfill(self, *extra: str) -> int:
        """`airflow backfill create` for [D1, END) into `schema`; returns the backfill's id."""
        before = {row[0] for row in self.query("select id from backfill")}
        self.cli(
            "backfill",
            "create",
            "--dag-id",
            DAG_ID,
            "--from-date",
            DAYS[0].date().isoformat(),
            "--to-date",
            DAYS[-1].date().isoformat(),
            *extra,
        )
        (backfill_id,) = {row[0] for row in self.query("select id from backfill")} - before
        return backfill_id

    def wait_for_backfill(self, backfill_id: int, *, until_completed: bool) -> list[tuple]:
        """Wait for the backfill's runs; with until_completed, also until the scheduler marks
        the backfill completed (it checks every 30 s), as another backfill of the DAG can be
        created only then."""
        runs = self.wait_for_runs("dag_run.backfill_id = %s", (backfill_id,), len(DAYS))
        started = time.monotonic()
        deadline = started + RUN_TIMEOUT
        while until_completed and not self.query(
            "select 1 from backfill where id = %s and completed_at is not null", (backfill_id,)
        ):
            assert time.monotonic() < deadline, f"backfill {backfill_id} not marked completed"
            self.check_alive()
            time.sleep(0.5)
        if until_completed:
            self.timings.append(f"backfill {backfill_id} marked completed: {time.monotonic() - started:.1f}s")
        return runs


@pytest.fixture
def deployment(stack, tmp_path):
    """A running Airflow (api-server, dag-processor, scheduler) on its own AIRFLOW_HOME and
    metadata database; every process stopped and the database dropped afterwards."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    staging = tmp_path / "staging"
    staging.mkdir()
    database = f"airflow_{uuid.uuid4().hex[:8]}"
    deployed = Deployment(home, stack.env(), staging, stack.postgres.create_database(database))
    try:
        deployed.cli("db", "migrate")
        started = time.monotonic()
        deployed.start()
        deployed.wait_until_ready()
        deployed.timings.append(f"components ready: {time.monotonic() - started:.1f}s")
        yield deployed
    finally:
        started = time.monotonic()
        hard_killed = deployed.stop()
        deployed.timings.append(f"stopped: {time.monotonic() - started:.1f}s")
        print("\n".join(deployed.timings))
        left = deployed.marked_pids()
        open_ports = [p for p in deployed.ports.values() if port_is_open("127.0.0.1", p)]
        stack.postgres.execute(f'drop database if exists "{database}" with (force)')
        assert not left and not open_ports, f"left behind: pids {left}, ports {open_ports}"
        if hard_killed:
            # Not a failure of the pipeline, but worth seeing in the report.
            print(f"killed with SIGKILL: {hard_killed}")


@pytest.fixture
def target_schema(stack):
    schema = f"real_backfill_{uuid.uuid4().hex[:8]}"
    yield schema
    backend = psycopg2.connect(stack.postgres.dsn(stack.redshift.database))
    backend.autocommit = True
    try:
        with backend.cursor() as cursor:
            cursor.execute(f"drop schema if exists {schema} cascade")
    finally:
        backend.close()


def _in_range(timestamp_type: str) -> str:
    suffix = "+00" if timestamp_type == "timestamptz" else ""
    return (
        f"action_time >= '{D1:%Y-%m-%d %H:%M:%S}{suffix}' and action_time < '{END:%Y-%m-%d %H:%M:%S}{suffix}'"
    )


def _assert_backfill_runs(deployment: Deployment, runs: list[tuple], what: str) -> None:
    intervals = [(_as_utc(start), _as_utc(end)) for _, _, start, end in runs]
    assert intervals == [(day, day + timedelta(days=1)) for day in DAYS], (
        f"{what}: one run per day of the range, each with its day as data interval: {runs}"
    )
    states = deployment.task_states([run_id for run_id, *_ in runs])
    for run_id, state, *_ in runs:
        assert state == "success", f"{what}: run {run_id} is {state}: {states.get(run_id)}"
        assert states[run_id].get("validate") == "success", f"{what}: {run_id}: {states[run_id]}"
        assert set(states[run_id].values()) == {"success"}, f"{what}: {run_id}: {states[run_id]}"


def _as_utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def test_airflow_backfill_over_a_range_matches_the_source_and_reruns_idempotently(
    deployment, stack, target_schema
):
    """Full refresh (a manual run), late corrections in three days, `airflow backfill create`
    over those days: every run succeeds (validate included) and the target equals the source
    row for row; the same backfill again with --reprocess-behavior completed reruns every
    task and changes nothing. No secret reaches a task log or a component's output."""
    demo_data.generate(
        stack.source_dsn, rows=ROWS, seed=11, users=USERS, period_start=DATA_START, period_days=DATA_DAYS
    )
    source = psycopg2.connect(stack.source_dsn)
    target = psycopg2.connect(stack.redshift.dsn())
    try:
        # A full refresh into a schema of this test's own, as an operator triggers it.
        run_id = f"full_refresh_{uuid.uuid4().hex[:6]}"
        deployment.cli(
            "dags",
            "trigger",
            DAG_ID,
            "--run-id",
            run_id,
            # With no logical date (the CLI's default) the run has no data interval, and
            # validate fails on it: a known issue of the DAG, reported, not tested here.
            "--logical-date",
            FULL_REFRESH_AT.isoformat(),
            "--conf",
            json.dumps({"mode": "full_refresh", "target_schema": target_schema}),
        )
        (full,) = deployment.wait_for_runs("dag_run.run_id = %s", (run_id,), 1)
        assert full[1] == "success", deployment.task_states([run_id])
        assert_same_rows(source_rows(source), target_rows(target, target_schema), "after the full refresh")

        for day in DAYS:
            change_source_within(source, day)
        expected = source_rows(source, _in_range("timestamp"))
        assert target_rows(target, target_schema, _in_range("timestamptz")) != expected, "the days differ now"

        # One run at a time, as the nightly runs go (the DAG's max_active_runs=1). Without
        # --max-active-runs a backfill runs up to 10 at once and ignores the DAG's limit:
        # concurrent REPLACEs of action_type and a day validated before the day before it
        # is reloaded make that racy -- a known issue of the DAG, reported, not tested here.
        conf = ("--dag-run-conf", json.dumps({"target_schema": target_schema}), "--max-active-runs", "1")
        first = deployment.backfill(*conf)
        runs = deployment.wait_for_backfill(first, until_completed=True)
        _assert_backfill_runs(deployment, runs, "backfill")
        assert_same_rows(
            expected, target_rows(target, target_schema, _in_range("timestamptz")), "backfilled days"
        )
        assert_same_rows(
            source_rows(source), target_rows(target, target_schema), "whole table after the backfill"
        )

        # The same backfill again: the completed runs are cleared and run again, with no effect.
        started = time.time()
        second = deployment.backfill(*conf, "--reprocess-behavior", "completed")
        reruns = deployment.wait_for_backfill(second, until_completed=False)
        _assert_backfill_runs(deployment, reruns, "rerun")
        assert [r[0] for r in reruns] == [r[0] for r in runs], "the same runs, cleared and run again"
        rerun_starts = deployment.query(
            "select task_id, start_date from task_instance where run_id = any(%s)",
            ([r[0] for r in runs],),
        )
        assert all(_as_utc(start).timestamp() >= started - 1 for _, start in rerun_starts), rerun_starts
        assert_same_rows(source_rows(source), target_rows(target, target_schema), "after the rerun")
        staging = fetch_rows(
            target,
            "select tablename from pg_tables where schemaname = %s and tablename like 'action_staging%%'",
            (target_schema,),
        )
        assert staging == [], "every staging table is dropped by its publish"
    finally:
        source.close()
        target.close()

    secrets = {
        "the aws secret key": stack.s3.secret_access_key,
        "the PostgreSQL password": stack.postgres.password,
        "the Redshift password": stack.redshift.password,
    }
    places = {f"log file {p}": p for p in (deployment.home / "logs").rglob("*") if p.is_file()}
    places.update({f"output of airflow {name}": path for name, path in deployment.outputs.items()})
    places["output of the CLI"] = deployment.home / "cli-output.log"
    copy_logs = [path for place, path in places.items() if "task_id=load_action_staging" in place]
    assert len(copy_logs) == 1 + 2 * len(DAYS), f"a COPY log per run and attempt: {copy_logs}"
    for path in copy_logs:  # the statement carrying the secret is logged, redacted
        assert "aws_secret_access_key=***" in path.read_text(errors="replace"), path
    for what, secret in secrets.items():
        for place, path in places.items():
            assert secret not in path.read_text(errors="replace"), f"{what} appeared in {place}"
