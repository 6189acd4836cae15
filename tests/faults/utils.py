"""Assertion and process helpers of the fault suite: a DAG run in a killable subprocess,
bounded waits on what the databases show (pg_stat_activity, pg_locks), never on sleeps."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg2

REPO_ROOT = Path(__file__).resolve().parents[2]

# The subprocess: the DAG as the DAG processor sees it, retries off, then one dag.test() run.
# It warms up first (imports, the DagBag, the in-process execution API that dag.test() builds
# on its first task: ~15-30 s here) and waits for its logical date and conf on stdin, so a
# test can start it ahead, while other work runs, and give it the run when the stage's lock
# is in place.
DAG_RUN_SCRIPT = """
import json, sys
from datetime import datetime
from airflow.sdk.execution_time.supervisor import in_process_api_server
from tests.dag_helpers import load_dag

dag = load_dag(retries=0)
in_process_api_server().app
print("READY", flush=True)
line = sys.stdin.readline()
if not line:
    sys.exit(0)
logical_date, conf = json.loads(line)
run = dag.test(logical_date=datetime.fromisoformat(logical_date), run_conf=conf)
print("DAG RUN STATE", run.state, flush=True)
"""

WAIT_SECONDS = 90  # generous: the machine is shared; a wait that times out names what it waited for


def wait_until(
    condition: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS, on_timeout=None
) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(0.2)


def watch(dsn: str) -> Any:
    """An autocommit connection to watch a database from (one for a whole wait, not one a poll:
    a connection a poll would fork a backend ten times a second on a shared machine)."""
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    return connection


def _rows(connection: Any, sql: str, params: Any = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def lock_waiters(connection: Any, query_like: str) -> list[tuple[int, str]]:
    """(pid, query) of the other sessions of the connection's database waiting on a lock while
    running a statement that matches `query_like` (SQL LIKE, case-insensitive)."""
    return _rows(
        connection,
        "select pid, query from pg_stat_activity "
        "where datname = current_database() and pid <> pg_backend_pid() "
        "and wait_event_type = 'Lock' and query ilike %s",
        (query_like,),
    )


def sessions_locking(connection: Any, relation: str) -> list[int]:
    """Pids of the other sessions holding or waiting for a lock on `relation` (schema.table)."""
    return [
        pid
        for (pid,) in _rows(
            connection,
            "select distinct pid from pg_locks where locktype = 'relation' "
            "and relation = to_regclass(%s) and pid <> pg_backend_pid()",
            (relation,),
        )
    ]


def activity(connection: Any) -> str:
    """pg_stat_activity of the connection's database, for a timeout's message."""
    rows = _rows(
        connection,
        "select pid, state, wait_event_type, wait_event, left(query, 120) from pg_stat_activity "
        "where datname = current_database() and pid <> pg_backend_pid()",
    )
    return "\n  ".join(["", "pg_stat_activity:", *map(str, rows)])


def copy_airflow_home(parent_home: str, home: Path) -> Path:
    """A fresh AIRFLOW_HOME whose SQLite metadata database is a copy of the (migrated) parent's:
    a migration of its own costs ~13 s here, a copy milliseconds. dag.test() clears and reuses
    a run of the same logical date, so the runs the copy carries do not matter."""
    home.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(Path(parent_home) / "airflow.db")
    copy = sqlite3.connect(home / "airflow.db")
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    return home


class DagRunProcess:
    """One dag.test() run of postgres_to_redshift in a subprocess, in a process group of its
    own (so SIGKILL reaches everything it started), with its own AIRFLOW_HOME. Started warm
    and idle; `run()` gives it its logical date and conf."""

    def __init__(self, home: Path) -> None:
        self.log_path = home / "dag_run.log"
        env = {
            **os.environ,  # the stack's connections and TRACKING_SYNC_* (stack_env, pipeline_env)
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "plugins")]),
        }
        env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", DAG_RUN_SCRIPT],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session and process group: pgid == pid
            )
        self.pgid = self.process.pid
        self.taken = False

    def run(self, logical_date: datetime, conf: dict) -> DagRunProcess:
        wait_until(
            lambda: self.assert_running() and "READY" in self.log(),
            "the DAG run's subprocess to warm up",
            timeout=180,
            on_timeout=self.log_tail,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps([logical_date.isoformat(), conf]).encode() + b"\n")
        self.process.stdin.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self) -> str:
        return "\n  subprocess log (tail):\n" + self.log()[-3000:]

    def assert_running(self) -> bool:
        """For waits: still running (a run that ended early fails the wait with its log)."""
        if self.process.poll() is not None:
            raise AssertionError(f"the DAG run exited with {self.process.returncode}{self.log_tail()}")
        return True

    def kill(self) -> None:
        """SIGKILL to the whole process group, then reap the child."""
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()

    def group_members(self) -> list[int]:
        """Pids still in the run's process group (zombies included)."""
        members = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.pgid:  # fields after the name: state, ppid, pgrp
                members.append(int(stat.parent.name))
        return members


class DagRunPool:
    """DagRunProcesses started one ahead of use: one warms up while the one before runs."""

    def __init__(self, start: Callable[[int], DagRunProcess]) -> None:
        self._start = start
        self.started: list[DagRunProcess] = []
        self._budget = 0

    def fill(self, count: int) -> None:
        self._budget = count
        self._start_next()

    def _start_next(self) -> None:
        if len(self.started) < self._budget:
            self.started.append(self._start(len(self.started)))

    def take(self) -> DagRunProcess:
        taken = sum(1 for process in self.started if process.taken)
        assert taken < self._budget, "raise the module's DAG_RUN_PROCESSES"
        process = self.started[taken]
        process.taken = True
        self._start_next()
        return process

    def kill_all(self) -> None:
        for process in self.started:
            process.kill()
