"""The local stack itself: what `make stack-up` promises a developer."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from devstack.__main__ import process_alive
from devstack.net import port_is_open

pytestmark = pytest.mark.integration  # `python -m devstack up`: the whole stack

REPO_ROOT = Path(__file__).resolve().parents[2]


def _source_env_file(path: Path) -> dict[str, str]:
    """What `source .devstack/env` would export, read by a real shell."""
    out = subprocess.run(
        ["bash", "-c", f"set -a; source {shlex.quote(str(path))}; env -0"],
        check=True,
        capture_output=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def test_stack_up_env_and_down_leave_nothing_behind(tmp_path):
    state = tmp_path / "devstack"
    env = {**os.environ, "DEVSTACK_DIR": str(state)}
    up = subprocess.run(
        [sys.executable, "-m", "devstack", "up"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert up.returncode == 0, up.stderr + up.stdout
    pid = int((state / "pid").read_text())
    try:
        exported = _source_env_file(state / "env")
        for name in (
            "AIRFLOW_CONN_POSTGRES_SOURCE",
            "AIRFLOW_CONN_AWS_DEFAULT",
            "AIRFLOW_CONN_REDSHIFT_DEFAULT",
            "TRACKING_SYNC_BUCKET",
        ):
            assert exported.get(name), f"{name} missing from .devstack/env"

        # psql reaches the source database through the connection's URI
        uri = exported["AIRFLOW_CONN_POSTGRES_SOURCE"]
        if shutil.which("psql"):
            psql = subprocess.run(
                ["psql", uri, "-tAc", "select count(*) from action_type"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert psql.returncode == 0, psql.stderr
            assert psql.stdout.strip() == "10"
        with psycopg2.connect(uri) as conn, conn.cursor() as cur:
            cur.execute("select code from action_type order by id")
            assert [r[0] for r in cur.fetchall()][:2] == ["login", "logout"]

        # boto3 lists the bucket through the connection's endpoint
        import boto3

        aws = json.loads(exported["AIRFLOW_CONN_AWS_DEFAULT"])
        s3 = boto3.client(
            "s3",
            endpoint_url=aws["extra"]["endpoint_url"],
            region_name=aws["extra"]["region_name"],
            aws_access_key_id=aws["login"],
            aws_secret_access_key=aws["password"],
        )
        buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert exported["TRACKING_SYNC_BUCKET"] in buckets

        ports = [
            int(uri.rsplit(":", 1)[1].split("/")[0]),
            int(aws["extra"]["endpoint_url"].rsplit(":", 1)[1]),
        ]
        redshift = json.loads(exported["AIRFLOW_CONN_REDSHIFT_DEFAULT"])
        assert redshift["conn_type"] == "redshift" and redshift["extra"]["ssl"] is False
        import redshift_connector

        conn = redshift_connector.connect(
            host=redshift["host"],
            port=int(redshift["port"]),
            user=redshift["login"],
            password=redshift["password"],
            database=redshift["schema"],
            ssl=False,
        )
        try:
            cursor = conn.cursor()
            cursor.execute("select 1")
            assert cursor.fetchone()[0] == 1
        finally:
            conn.close()
        ports.append(int(redshift["port"]))
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "devstack", "down"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert down.returncode == 0, down.stderr
    assert not process_alive(pid), "the stack process is still running after stack-down"
    for port in ports:
        assert not port_is_open("127.0.0.1", port), f"port {port} still open after stack-down"
    assert not (state / "env").exists()
    # everything the stack started ran in the session `up` created for it
    # (zombies only wait for whoever adopted them to reap them: they hold nothing)
    ps = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-s", str(pid)], capture_output=True, text=True)
    leftovers = [line for line in ps.stdout.splitlines() if line.split()[1][0] != "Z"]
    assert not leftovers, f"processes left behind: {leftovers}"
