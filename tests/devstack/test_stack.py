"""The local stack itself: what `make stack-up` promises a developer."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from contextlib import closing
from pathlib import Path
from urllib.parse import urlparse

import psycopg2
import pytest

from devstack.__main__ import process_alive
from devstack.net import port_is_open
from devstack.postgres import LocalPostgres
from devstack.stack import SOURCE_DATABASE, Stack

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
        # the stand-in's backing database: a cluster of its own, stopped with the rest
        backend = urlparse(exported["REDSHIFT_BACKEND_DSN"])
        assert backend.port != ports[0], "the stand-in's backend shares the source's cluster"
        ports.append(backend.port)
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


def _wal_position(dsn: str) -> int:
    """Where dsn's cluster inserts its next WAL record, in bytes (the write position lags
    behind it with synchronous_commit off)."""
    with closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cursor:
        cursor.execute("select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint")
        return cursor.fetchone()[0]


def _databases(dsn: str) -> set[str]:
    with closing(psycopg2.connect(dsn)) as conn, conn.cursor() as cursor:
        cursor.execute("select datname from pg_database")
        return {row[0] for row in cursor.fetchall()}


def test_the_stand_ins_writes_stay_out_of_the_sources_wal(stack):
    """The stand-in's backend is a PostgreSQL cluster of its own, as Redshift is not the
    source's server in production: a COPY into the target writes the backend's WAL, not the
    source's, which the capture's slot decodes and whose retained size on-call reads
    (planning.SlotReport). With one cluster, both WAL positions moved by the same bytes."""
    redshift, s3 = stack.redshift, stack.s3
    assert SOURCE_DATABASE in _databases(stack.source_dsn)
    assert redshift.database not in _databases(stack.source_dsn)
    assert SOURCE_DATABASE not in _databases(redshift.backend_dsn())

    key = f"stack-clusters/{uuid.uuid4().hex[:8]}/action.csv"
    body = "".join(f"{i},action number {i}\n" for i in range(50_000))
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=body.encode())
    schema = f"wal_{uuid.uuid4().hex[:8]}"
    with closing(psycopg2.connect(redshift.dsn())) as target:
        target.autocommit = True
        cursor = target.cursor()
        cursor.execute(f"create schema {schema}")
        try:
            cursor.execute(f"create table {schema}.action (id bigint, name varchar(32))")
            source_before, backend_before = (
                _wal_position(stack.source_dsn),
                _wal_position(redshift.backend_dsn()),
            )
            cursor.execute(
                f"copy {schema}.action from 's3://{s3.bucket}/{key}' "
                f"access_key_id '{s3.access_key_id}' secret_access_key '{s3.secret_access_key}' csv"
            )
            source_after, backend_after = (
                _wal_position(stack.source_dsn),
                _wal_position(redshift.backend_dsn()),
            )
            cursor.execute(f"select count(*) from {schema}.action")
            assert cursor.fetchone()[0] == 50_000
        finally:
            cursor.execute(f"drop schema {schema} cascade")
    written = backend_after - backend_before
    assert written > 1 << 20, f"the COPY wrote {written} bytes of WAL: it did not load the rows"
    # the source may write a little WAL of its own meanwhile (a checkpoint, autovacuum)
    assert source_after - source_before < written / 10, (
        f"the source's WAL moved {source_after - source_before} bytes while the stand-in wrote "
        f"{written}: the stand-in's backend is in the source's cluster"
    )


def test_a_failed_start_stops_the_backend_cluster_too():
    """The source's cluster fails to start (its port taken) while the backend's starts in a
    thread: the stack waits for it and stops it, leaving no server and no data dir."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        stack = Stack(postgres=LocalPostgres(port=taken.getsockname()[1]))
        with pytest.raises(RuntimeError, match="PostgreSQL did not start"):
            stack.start()
    backend = stack.redshift_backend
    assert backend.port, "the backend's cluster was not started beside the source's"
    assert not port_is_open("127.0.0.1", backend.port), "the backend's cluster still runs"
    assert backend.base_dir is None, "the backend's data dir was not removed"
