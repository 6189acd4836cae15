"""What the browser tests share: Debian's chromium under Playwright, `make airflow` as a
process, and the few ways to read the Airflow 3.3 UI that need more than a locator.

The tests click; the metadata DB and the databases are read only to wait for a run to end
(failing fast with the task's log when one fails) and to check what the clicks did.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg2

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "postgres_to_redshift"
# Screenshots of every step (and of a failing one), kept after the run: .devstack/ is ignored.
SCREENSHOTS = REPO_ROOT / ".devstack" / "ui-screenshots"

CHROMIUM = "/usr/bin/chromium"  # Debian's package; `playwright install` cannot download here
INSTALL_HINT = "sudo apt-get install -y chromium (or `make test` as root, which installs it)"
# Without these Chromium keeps dialing Google's hosts, which a closed network refuses.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1600, "height": 1000}  # wide enough for the grid's latest runs

UP_TIMEOUT = 300  # `make airflow`: stack, demo data, db migrate, four components: ~60-70 s here
DOWN_TIMEOUT = 90
RUN_TIMEOUT = 300  # one run here: ~10-30 s, behind another one (max_active_runs=1) ~45 s
UI_TIMEOUT_MS = 60_000  # one look at the page (auto-waiting locators); generous: on a loaded machine
# of 2 cores the api-server was seen answering nothing for ~20 s while the scheduler started runs

# The grid paints a task's state as the badge's background colour (oklch); its hue says which.
GREEN_HUES = range(120, 170)  # success: oklch(0.47 0.2 149)
RED_HUES = (*range(0, 45), *range(340, 361))  # failed


def chromium_executable() -> str | None:
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")


def chromium_args() -> list[str]:
    # Chromium refuses to run as root inside its own sandbox.
    return CHROMIUM_ARGS + (["--no-sandbox"] if os.geteuid() == 0 else [])


def read_exports(path: Path) -> dict[str, str]:
    """The `export NAME=value` lines of .devstack/env or .devstack/airflow.env."""
    values = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            values[name] = value
    return values


@dataclass
class MakeAirflow:
    """A running `python -m devstack airflow` (what `make airflow` runs) and what it printed."""

    url: str
    user: str
    password: str
    state_dir: Path
    output: Path

    @property
    def env(self) -> dict[str, str]:
        return read_exports(self.state_dir / "env")

    @property
    def metadata_dsn(self) -> str:
        dsn = read_exports(self.state_dir / "airflow.env")["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        return re.sub(r"^postgresql\+\w+://", "postgresql://", dsn)

    @property
    def logs(self) -> Path:
        return self.state_dir / "airflow" / "logs"

    def query(self, dsn: str, sql: str, params: tuple = ()) -> list[tuple]:
        connection = psycopg2.connect(dsn)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def metadata(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.query(self.metadata_dsn, sql, params)

    def task_log(self, run_id: str, task_id: str) -> str:
        folder = self.logs / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
        attempts = sorted(folder.glob("attempt=*.log"))
        return attempts[-1].read_text(errors="replace")[-6000:] if attempts else f"(no log in {folder})"

    def wait_for_runs(self, where: str, params: tuple, count: int, *, expect_failed_task: str = "") -> list:
        """Wait until `count` runs of the DAG matching `where` (SQL over dag_run) have ended.
        A task failing (other than `expect_failed_task`) or going up for retry fails at once,
        with its log. Returns [(run_id, state, start_date, end_date)] by logical date."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            bad = self.metadata(
                "select ti.run_id, ti.task_id, ti.state from task_instance ti join dag_run "
                f"on dag_run.dag_id = ti.dag_id and dag_run.run_id = ti.run_id where {where} "
                "and ti.state in ('failed', 'up_for_retry', 'upstream_failed') and ti.task_id <> %s",
                (*params, expect_failed_task),
            )
            if bad:
                run_id, task_id, state = bad[0]
                raise AssertionError(f"{task_id} of {run_id} is {state}:\n{self.task_log(run_id, task_id)}")
            runs = self.metadata(
                "select run_id, state, start_date, end_date from dag_run "
                f"where dag_id = %s and {where} order by logical_date",
                (DAG_ID, *params),
            )
            if len(runs) == count and all(state in ("success", "failed") for _, state, *_ in runs):
                return runs
            assert time.monotonic() < deadline, (
                f"runs not ended after {RUN_TIMEOUT}s: {runs}\n{self.output.read_text(errors='replace')[-3000:]}"
            )
            time.sleep(1)


def start_make_airflow(state_dir: Path, *, port: int, demo_rows: int) -> tuple:
    """Start `python -m devstack airflow` as `make airflow` does, in a process group of its own
    (as a shell's foreground job). Returns (process, output file)."""
    import subprocess
    import sys

    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "TRACKING_SYNC_")) and name != "PYTEST_CURRENT_TEST"
    }
    env.update(
        DEVSTACK_DIR=str(state_dir),
        DEMO_ROWS=str(demo_rows),
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "plugins")]),
    )
    output = state_dir.parent / "make-airflow.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "airflow", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return process, output


def wait_until_up(process, output: Path, state_dir: Path) -> MakeAirflow:
    """What `make airflow` printed once it is up: the URL, the user and the password."""
    started = time.monotonic()
    printed = ""
    while "Ctrl-C stops" not in printed:
        assert process.poll() is None, f"make airflow exited {process.returncode}:\n{printed[-6000:]}"
        assert time.monotonic() - started < UP_TIMEOUT, f"make airflow not up:\n{printed[-6000:]}"
        time.sleep(1)
        printed = output.read_text(errors="replace")
    return MakeAirflow(
        url=re.search(r"Airflow is up: (http://\S+)", printed).group(1),
        user=re.search(r"user: +(\S+)", printed).group(1),
        password=re.search(r"password: +(\S+)", printed).group(1),
        state_dir=state_dir,
        output=output,
    )


def hue(css_colour: str) -> float:
    """The hue of an `oklch(L C H)` colour, as the UI's theme writes its state colours."""
    match = re.fullmatch(r"oklch\(\s*[\d.]+%?\s+[\d.]+\s+([\d.]+)(?:\s*/\s*[\d.]+)?\s*\)", css_colour)
    assert match, f"not an oklch colour: {css_colour!r}"
    return float(match.group(1))


def grid_colours(page, run_id: str) -> dict[str, str]:
    """{task_id: background colour of its badge} in the grid's column for `run_id`."""
    return page.locator(f'[data-run-id="{run_id}"][data-task-id]').evaluate_all(
        """cells => Object.fromEntries(cells.map(cell => [cell.dataset.taskId,
             getComputedStyle(cell.querySelector('[data-testid="task-state-badge"]')).backgroundColor]))"""
    )


def eventually(page, check: Callable[[], None], *, timeout: float = RUN_TIMEOUT) -> None:
    """`check` (auto-waiting expect() calls) until it passes; the page is reloaded between
    tries, as a user presses F5 when a view stops refreshing itself."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            page.reload()
