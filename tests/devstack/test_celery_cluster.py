"""devstack.redis_server and devstack.celery_cluster without Airflow running (the whole
deployment is exercised by tests/e2e/test_celery.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.celery_cluster import CeleryDeployment, CeleryWorker
from devstack.net import port_is_open
from devstack.postgres import PostgresServer
from devstack.redis_server import HOST, LocalRedis, RedisNotInstalled, redis_server_binary


@pytest.mark.integration  # starts redis-server
def test_local_redis_answers_a_ping_writes_nothing_but_its_log_and_stops(tmp_path):
    try:
        redis_server_binary()
    except RedisNotInstalled as missing:
        pytest.skip(str(missing))
    redis = LocalRedis(tmp_path / "redis").start()
    try:
        assert redis.ping()
        assert redis.url == f"redis://{HOST}:{redis.port}/0"
    finally:
        redis.stop()
    assert not port_is_open(HOST, redis.port)
    assert sorted(p.name for p in (tmp_path / "redis").iterdir()) == ["redis.log"], "no RDB or AOF file"


def test_a_queue_that_no_worker_consumes_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(ValueError, match=r"no worker consumes the queue\(s\) \['uploads'\]"):
        CeleryDeployment(
            tmp_path,
            postgres=None,
            workers=(CeleryWorker("a", ("default", "exports")),),
            task_queues={"export_": "exports", "upload_": "uploads"},
        )


class _Server(PostgresServer):
    host, port, user, password = "127.0.0.1", 5432, "stack", "secret"


def test_each_worker_gets_its_own_home_temp_dir_staging_folder_hostname_and_log_port(tmp_path):
    deployment = CeleryDeployment(
        tmp_path, postgres=_Server(), workers=(CeleryWorker("a"), CeleryWorker("b"))
    )
    a, b = (deployment.worker_env(worker) for worker in deployment.workers)
    for name in ("AIRFLOW_HOME", "TMPDIR", "TRACKING_SYNC_STAGING_DIR"):
        folders = {Path(a[name]), Path(b[name])}
        assert len(folders) == 2 and not any(x in y.parents for x in folders for y in folders), (
            name,
            folders,
        )
        assert all(deployment.home in folder.parents for folder in folders), "under the deployment's home"
    assert (a["DEVSTACK_WORKER_HOSTNAME"], b["DEVSTACK_WORKER_HOSTNAME"]) == ("a", "b")
    assert a["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "devstack.celery_cluster.worker_hostname"
    assert a["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] != b["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]
    assert a["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert a["AIRFLOW__CELERY__BROKER_URL"] == b["AIRFLOW__CELERY__BROKER_URL"] == deployment.broker_url
    assert a["AIRFLOW__CELERY__RESULT_BACKEND"].startswith(
        "db+postgresql+psycopg2://stack:secret@127.0.0.1:5432/airflow_"
    )
