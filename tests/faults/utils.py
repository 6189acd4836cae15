"""Assertion and process helpers of the fault suite: a DAG run in a killable subprocess,
bounded waits on what the databases show (pg_stat_activity, pg_locks), never on sleeps."""

from __future__ import annotations

import json
import os
import select
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

# The DAG runs' parent: a subprocess that warms up once (imports, the DAG as the DAG processor
# sees it with retries off, the in-process execution API that dag.test() builds on its first
# task: ~15-30 s of CPU here), then forks one child per line it reads on stdin. Each child is
# a session and process group of its own running one dag.test(), with its output in a log
# file; the parent prints "CHILD <pid>" and reaps it when it dies. Three kills cost one
# warm-up instead of three.
DAG_RUN_PARENT_SCRIPT = """
import json, os, signal, sys
protocol = os.fdopen(os.dup(1), "w")  # READY / CHILD lines; logs go to stderr
os.dup2(2, 1)
from datetime import datetime
from airflow.sdk.execution_time.supervisor import in_process_api_server
from tests.dag_helpers import load_dag

dag = load_dag(retries=0)
in_process_api_server().app


def reap(*_):
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


signal.signal(signal.SIGCHLD, reap)
print("READY", file=protocol, flush=True)
for line in sys.stdin:
    logical_date, conf, log_path, run_after = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        protocol.close()
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(log, 1)
        os.dup2(log, 2)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        from airflow import settings
        if settings.engine is not None:
            settings.engine.dispose(close=False)  # the parent's pooled connections stay its own
        run = dag.test(
            logical_date=datetime.fromisoformat(logical_date),
            run_conf=conf,
            run_after=run_after and datetime.fromisoformat(run_after),  # fixed: the run id too
        )
        print("DAG RUN STATE", run.state, flush=True)
        os._exit(0)
    print("CHILD", pid, file=protocol, flush=True)
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


def process_state(pid: int) -> str | None:
    """The process's state letter (R, S, Z...), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def process_group(pgid: int) -> list[int]:
    """Pids in the process group (zombies included)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp
            members.append(int(stat.parent.name))
    return members


class DagRunParent:
    """The warm parent of the DAG runs (DAG_RUN_PARENT_SCRIPT), with its own AIRFLOW_HOME and
    the stack's environment; `start()` forks a run."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.runs = 0
        self.forked: list[int] = []  # each run's pid, its process group's id too
        env = {
            **os.environ,  # the stack's connections and TRACKING_SYNC_* (stack_env, pipeline_env)
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "plugins")]),
        }
        env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
        self.log_path = home / "parent.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", DAG_RUN_PARENT_SCRIPT],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )

    def _line(self, prefix: str, timeout: float) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().decode() if ready else ""
        if not line.startswith(prefix):
            self.process.poll()
            raise AssertionError(
                f"the DAG runs' parent did not say {prefix!r} within {timeout:.0f} s "
                f"(exit {self.process.returncode}, said {line!r}):\n"
                + self.log_path.read_text(errors="replace")[-3000:]
            )
        return line

    def start(self, logical_date: datetime, conf: dict, run_after: datetime | None = None) -> DagRunProcess:
        """A run; with `run_after`, its run id is manual__<run_after> (dag.test()'s), so that a
        rerun in this process (run_dag(..., run_after=)) is a rerun of the same run."""
        if self.runs == 0:
            self._line("READY", timeout=240)
        self.runs += 1
        log_path = self.home / f"dag_run_{self.runs}.log"
        assert self.process.stdin is not None
        self.process.stdin.write(
            json.dumps(
                [logical_date.isoformat(), conf, str(log_path), run_after and run_after.isoformat()]
            ).encode()
            + b"\n"
        )
        self.process.stdin.flush()
        pid = int(self._line("CHILD", timeout=30).split()[1])
        self.forked.append(pid)
        return DagRunProcess(pid, log_path)

    def stop(self) -> None:
        """Kill the parent's group and every run's group it may have left."""
        for pgid in [*self.forked, self.process.pid]:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class DagRunProcess:
    """One dag.test() run, a forked child of the DagRunParent, in a process group of its own
    (pgid == pid), so SIGKILL to the group reaches everything the run started."""

    def __init__(self, pid: int, log_path: Path) -> None:
        self.pid = self.pgid = pid
        self.log_path = log_path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self) -> str:
        return "\n  DAG run log (tail):\n" + self.log()[-3000:]

    def assert_running(self) -> bool:
        """For waits: still running (a run that ended early fails the wait with its log)."""
        if process_state(self.pid) in (None, "Z"):
            raise AssertionError(f"the DAG run {self.pid} ended before the kill{self.log_tail()}")
        return True

    def kill(self) -> None:
        """SIGKILL to the whole process group; its parent reaps it."""
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_until(
            lambda: process_state(self.pid) is None, f"the killed run {self.pid} to be reaped", timeout=30
        )

    def group_members(self) -> list[int]:
        return process_group(self.pgid)
