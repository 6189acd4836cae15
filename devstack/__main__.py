"""Run the local stack in the background for manual work.

    python -m devstack up      start PostgreSQL, S3 and the Redshift stand-in; write .devstack/env
    python -m devstack down    stop them and remove what they left
    python -m devstack status  say whether it is running
    python -m devstack airflow [--port N]
                               the stack, demo data and Airflow's UI in the foreground; Ctrl-C stops all

`make stack-up` / `make stack-down` / `make airflow` call these. Source `.devstack/env` to get the
AIRFLOW_CONN_* variables that point Airflow (or psql, boto3) at the stack.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from devstack.stack import REPO_ROOT

STATE_DIR = Path(os.environ.get("DEVSTACK_DIR", REPO_ROOT / ".devstack"))
ENV_FILE = STATE_DIR / "env"
PID_FILE = STATE_DIR / "pid"
LOG_FILE = STATE_DIR / "stack.log"


def process_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _running_pid() -> int | None:
    try:
        pid = int(PID_FILE.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if process_alive(pid) else None


def serve() -> None:
    """Foreground: start the stack, write the env file, wait for SIGTERM/SIGINT, stop."""
    from devstack.stack import start_stack

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stack = start_stack()
    try:
        stack.write_env_file(ENV_FILE)
        print(f"stack up; environment in {ENV_FILE}", flush=True)
        stopped.wait()
    finally:
        stack.stop()
        ENV_FILE.unlink(missing_ok=True)
        PID_FILE.unlink(missing_ok=True)
        print("stack down", flush=True)


def up(timeout: float = 90) -> int:
    if _running_pid():
        print(f"already running (pid {PID_FILE.read_text().strip()}); environment in {ENV_FILE}")
        return 0
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    ENV_FILE.unlink(missing_ok=True)
    with open(LOG_FILE, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "plugins")])},
        )
    PID_FILE.write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while not ENV_FILE.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            PID_FILE.unlink(missing_ok=True)
            print(
                f"the stack did not start; see {LOG_FILE}:\n{LOG_FILE.read_text()[-3000:]}", file=sys.stderr
            )
            return 1
        time.sleep(0.1)
    print(f"stack up (pid {process.pid}). Use it with:  source {ENV_FILE}")
    return 0


def down(timeout: float = 60) -> int:
    pid = _running_pid()
    if pid is None:
        print("stack not running")
        PID_FILE.unlink(missing_ok=True)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    PID_FILE.unlink(missing_ok=True)
    if process_alive(pid):
        os.killpg(pid, signal.SIGKILL)
        print("stack did not stop in time; killed", file=sys.stderr)
        return 1
    print("stack down")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status", "serve", "airflow"])
    parser.add_argument("--port", type=int, default=0, help="airflow: the UI's port (8080 when free)")
    args = parser.parse_args()
    command = args.command
    if command == "airflow":
        if _running_pid():
            print(
                f"the local stack is running already (pid {PID_FILE.read_text().strip()}): `make stack-down` first"
            )
            return 1
        from devstack.airflow import serve_ui

        rows = int(os.environ["DEMO_ROWS"]) if os.environ.get("DEMO_ROWS") else None
        return serve_ui(STATE_DIR, port=args.port, rows=rows)
    if command == "up":
        return up()
    if command == "down":
        return down()
    if command == "status":
        pid = _running_pid()
        print(f"running (pid {pid}); environment in {ENV_FILE}" if pid else "not running")
        return 0
    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
