"""devstack.airflow: Airflow's components as subprocesses, and `make airflow` built on them.

One full start/stop cycle only (Airflow takes ~40-60 s to come up here), through `make airflow`'s
entry point: it exercises AirflowDeployment's start, readiness, password, REST API and stop.
tests/e2e/test_real_backfill.py uses the class directly.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg2
import pytest

from devstack.airflow import (
    AirflowDeployment,
    AirflowDidNotStart,
    access_token,
    processes_in_sessions,
    sessions_under,
)
from devstack.net import free_port, port_is_open
from devstack.postgres import LocalPostgres

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "postgres_to_redshift"
UP_TIMEOUT = 300  # the stack, demo data, db migrate and four components: ~70 s here
DOWN_TIMEOUT = 90


def test_a_component_that_cannot_start_fails_readiness_with_the_end_of_its_output(tmp_path):
    postgres = LocalPostgres().start()
    try:
        deployment = AirflowDeployment(tmp_path / "home", postgres=postgres, components=("scheduler",))
        deployment.create_metadata_database()  # and no `airflow db migrate`: the scheduler exits
        deployment.launch()
        with pytest.raises(AirflowDidNotStart) as raised:
            deployment.wait_until_ready()
        message = str(raised.value)
        assert "airflow scheduler exited with" in message, message
        assert "airflow db migrate" in message, f"the component's own words are in the message: {message}"
        assert str(deployment.output("scheduler")) in message, message
        assert deployment.stop() == [], "nothing needed SIGKILL"
        assert deployment.leftover_pids() == []
        server = psycopg2.connect(postgres.dsn())
        try:
            with server.cursor() as cursor:
                cursor.execute("select 1 from pg_database where datname = %s", (deployment.database,))
                assert cursor.fetchall() == [], "the metadata DB is dropped by stop()"
        finally:
            server.close()
    finally:
        postgres.stop()


def test_leftovers_are_found_by_session_also_when_setproctitle_hid_their_environment():
    # Airflow retitles its workers and task supervisors; that overwrites /proc/<pid>/environ.
    marker = f"TEST_RETITLED={uuid.uuid4().hex}"
    # A title longer than argv and the environment together overwrites all of what
    # /proc/<pid>/environ shows, whatever setproctitle pads with.
    script = (
        "import os, setproctitle, sys, time; size = sum(len(k) + len(v) + 2 for k, v in os.environ.items()); "
        "setproctitle.setproctitle('airflow worker -- ' + 'x' * (size + len(' '.join(sys.argv)))); time.sleep(60)"
    )
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {script!r}]); time.sleep(60)",
        ],
        env={**os.environ, marker.split("=")[0]: marker.split("=")[1]},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while len(processes_in_sessions({leader.pid})) < 2:
            assert time.monotonic() < deadline, "the retitled child did not start"
            time.sleep(0.1)
        (child,) = set(processes_in_sessions({leader.pid})) - {leader.pid}
        deadline = time.monotonic() + 20
        while b"airflow worker" not in Path(f"/proc/{child}/cmdline").read_bytes():
            assert time.monotonic() < deadline, "the child was not retitled"
            time.sleep(0.1)
        while child in processes_in_sessions(set(), marker=marker):  # the rest of the title lands
            assert time.monotonic() < deadline, "the marker still shows in the retitled environment"
            time.sleep(0.1)
        assert child in processes_in_sessions({leader.pid}), "found by its session"
        assert leader.pid in processes_in_sessions(set(), marker=marker)
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()
    deadline = time.monotonic() + 5
    while processes_in_sessions({leader.pid}) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_in_sessions({leader.pid}) == []


def test_unknown_component_is_refused(tmp_path):
    with pytest.raises(ValueError, match="webserver"):
        AirflowDeployment(tmp_path, postgres=LocalPostgres(), components=("webserver",))


def test_make_airflow_serves_the_ui_on_the_stack_and_ctrl_c_stops_everything(tmp_path):
    """`python -m devstack airflow` (what `make airflow` runs): prints the URL, the user and
    the password; they log in to the REST API, which lists the DAG; .devstack/env has a
    DSN for each database; Ctrl-C (SIGINT to the foreground process group, as a terminal
    sends it) stops Airflow and the stack: no process, port or env file left."""
    state = tmp_path / "devstack"
    marker = uuid.uuid4().hex  # inherited by every process started below (that does not retitle)
    port = free_port()
    env = {
        **os.environ,
        "DEVSTACK_DIR": str(state),
        "DEMO_ROWS": "2000",
        "TEST_MAKE_AIRFLOW_MARKER": marker,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "plugins")]),
    }
    output = tmp_path / "make-airflow.out"
    started = time.monotonic()
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "airflow", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, as a shell's foreground job
        )
    timings = []
    ports = [port]
    try:
        printed = ""
        while "Ctrl-C stops" not in printed:
            assert process.poll() is None, f"exited with {process.returncode}:\n{output.read_text()[-6000:]}"
            assert time.monotonic() - started < UP_TIMEOUT, f"not up:\n{output.read_text()[-6000:]}"
            time.sleep(1)
            printed = output.read_text(errors="replace")
        timings.append(f"up: {time.monotonic() - started:.0f}s")
        url = re.search(r"Airflow is up: (http://\S+)", printed).group(1)
        user = re.search(r"user: +(\S+)", printed).group(1)
        password = re.search(r"password: +(\S+)", printed).group(1)
        assert url == f"http://127.0.0.1:{port}"
        assert "full_refresh" in printed and "paused" in printed, "it tells how to get a run going"

        assert "does not import" not in printed, f"the DAG file fails to import:\n{printed[-4000:]}"
        token = access_token(url, user, password)
        request = urllib.request.Request(
            f"{url}/api/v2/dags/{DAG_ID}", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            dag = json.load(response)
        assert dag["dag_id"] == DAG_ID and dag["has_import_errors"] is False, dag

        exported = subprocess.run(
            ["bash", "-c", f"set -a; source {shlex.quote(str(state / 'env'))}; env -0"],
            check=True,
            capture_output=True,
            env={"PATH": os.environ["PATH"]},
        ).stdout.decode()
        exported = dict(item.split("=", 1) for item in exported.split("\0") if "=" in item)
        for name, expected in (("SOURCE_DSN", 2000), ("REDSHIFT_DSN", None)):
            assert exported.get(name), f"{name} missing from .devstack/env"
            ports.append(int(exported[name].rsplit(":", 1)[1].split("/")[0]))
            if shutil.which("psql"):
                psql = subprocess.run(
                    ["psql", exported[name], "-tAc", "select 1"], capture_output=True, text=True, timeout=30
                )
                assert psql.returncode == 0 and psql.stdout.strip() == "1", (name, psql.stderr)
            if expected is not None:  # demo data in an empty source
                source = psycopg2.connect(exported[name])
                try:
                    with source.cursor() as cursor:
                        cursor.execute("select count(*) from action")
                        assert cursor.fetchone()[0] == expected
                finally:
                    source.close()
        ports.append(int(exported["S3_ENDPOINT_URL"].rsplit(":", 1)[1]))
    finally:
        sessions = sessions_under(process.pid)  # Airflow's components lead sessions of their own
        stopping = time.monotonic()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        try:
            process.wait(timeout=DOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
        timings.append(f"down: {time.monotonic() - stopping:.0f}s")
        print(", ".join(timings))
        time.sleep(0.5)
        left = processes_in_sessions(sessions, marker=f"TEST_MAKE_AIRFLOW_MARKER={marker}")
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    printed = output.read_text(errors="replace")
    assert process.returncode == 0, printed[-4000:]
    assert printed.rstrip().endswith("stopped"), printed[-4000:]
    assert "killed the hard way" not in printed, printed[-4000:]
    assert not left, f"processes left behind: {left}"
    assert not [p for p in ports if port_is_open("127.0.0.1", p)], f"ports still open: {ports}"
    assert not (state / "env").exists() and not (state / "pid").exists()
    assert (state / "airflow" / "simple_auth_manager_passwords.json.generated").exists(), (
        "the password stays with the Airflow home for the next start"
    )


def test_a_mapped_tasks_log_is_read_from_its_map_index(tmp_path):
    """A failed mapped task (export_action[1]) is reported with ITS log, not a missing file:
    Airflow writes a mapped task's attempts under map_index=<n>/."""
    deployment = AirflowDeployment(tmp_path / "home", postgres=LocalPostgres())
    task = tmp_path / "home" / "logs" / "dag_id=d" / "run_id=r" / "task_id=export_action"
    for index in (0, 1):
        (task / f"map_index={index}").mkdir(parents=True)
        (task / f"map_index={index}" / "attempt=2.log").write_text(f"the log of index {index}")
    assert deployment.task_log("d", "r", "export_action", 2, map_index=1).endswith("the log of index 1")
    assert deployment.task_log("d", "r", "export_action", 2, map_index=0).endswith("the log of index 0")
