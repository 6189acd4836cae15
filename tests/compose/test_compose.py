"""docker-compose.yaml brought up for real: Airflow 3 and the local stack in containers.

In order (one compose project for the module): the API server answers with the pinned Airflow;
the DAG is listed with no import errors; a full refresh triggered through the REST API runs to
success, validate included; the per-user totals read from the Redshift stand-in equal the
source's; `down -v` leaves no container, volume or network of the project.
"""

from __future__ import annotations

import math
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg2
import pytest

pytestmark = pytest.mark.compose

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "postgres_to_redshift"
TARGET_SCHEMA = "tracking"  # the DAG's default target_schema
RUN_ID = "compose_full_refresh"
RUN_TIMEOUT = 600
# the check's tolerance (its header): PostgreSQL's exact numeric vs Redshift's double
TOLERANCE = 0.001


class AirflowApi:
    """Airflow's REST API v2 as the admin of the simple auth manager."""

    def __init__(self, port: int, username: str = "admin", password: str = "admin"):
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        token = self.http.post("/auth/token", json={"username": username, "password": password})
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def get(self, path: str, **params) -> dict:
        response = self.http.get(f"/api/v2{path}", params=params)
        response.raise_for_status()
        return response.json()

    def send(self, method: str, path: str, body: dict) -> dict:
        response = self.http.request(method, f"/api/v2{path}", json=body)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()


@pytest.fixture(scope="module")
def api(compose, compose_env) -> AirflowApi:
    return AirflowApi(int(compose_env["AIRFLOW_API_PORT"]))


def _pinned_airflow() -> str:
    text = (REPO_ROOT / "requirements.txt").read_text()
    return re.search(r"^apache-airflow==(\S+)$", text, re.MULTILINE).group(1)


def test_api_server_answers_with_the_pinned_airflow(api):
    assert api.get("/monitor/health")["metadatabase"]["status"] == "healthy"
    assert api.get("/version")["version"] == _pinned_airflow()


def test_dag_is_listed_without_import_errors(api):
    assert api.get("/importErrors")["total_entries"] == 0, api.get("/importErrors")
    dag = api.get(f"/dags/{DAG_ID}")
    assert dag["dag_id"] == DAG_ID and not dag["is_stale"]


def _task_states(api: AirflowApi) -> dict[str, str]:
    instances = api.get(f"/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances")["task_instances"]
    return {ti["task_id"]: ti["state"] for ti in instances}


def test_full_refresh_through_the_rest_api_succeeds(api, timings):
    started = time.monotonic()
    # Triggered while the DAG is still paused, then unpaused: unpausing (catchup off) also starts
    # the latest scheduled interval; with one active run at a time, both run, one after the other.
    run = api.send(
        "POST",
        f"/dags/{DAG_ID}/dagRuns",
        {"dag_run_id": RUN_ID, "logical_date": "2026-01-01T00:00:00Z", "conf": {"mode": "full_refresh"}},
    )
    assert run["state"] == "queued" and run["conf"] == {"mode": "full_refresh"}
    assert api.send("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})["is_paused"] is False
    deadline = time.monotonic() + RUN_TIMEOUT
    state = run["state"]
    while state not in ("success", "failed") and time.monotonic() < deadline:
        time.sleep(3)
        try:
            state = api.get(f"/dags/{DAG_ID}/dagRuns/{RUN_ID}")["state"]
        except httpx.TransportError:  # a busy 2-core machine: the API server may answer late
            continue
    timings["full refresh (after unpause)"] = time.monotonic() - started
    tasks = _task_states(api)
    if state != "success":
        logs = subprocess.run(
            ["docker", "compose", "logs", "--tail", "60", "airflow-scheduler"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout
        pytest.fail(f"run {RUN_ID} is {state}; tasks: {tasks}\nscheduler log:\n{logs[-6000:]}", pytrace=False)
    assert tasks.get("validate") == "success", tasks
    assert set(tasks.values()) <= {"success", "skipped"}, tasks


def _per_user_totals(dsn: str, schema: str) -> dict[int, tuple[float, float]]:
    # The reference check as validate renders it (its shared pass inlined: it runs alone).
    from tracking_sync.validate.parity import load_checks

    check = next(c for c in load_checks() if c.name == "per_user_session_totals")
    sql = check.render(
        schema=schema,
        window_start=datetime(2000, 1, 1, tzinfo=UTC),
        window_end=datetime(2100, 1, 1, tzinfo=UTC),
        scope="full",
    )
    conn = psycopg2.connect(dsn, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("set timezone = 'UTC'")
            cur.execute(sql)
            return {user: (float(total), float(average)) for user, total, average in cur.fetchall()}
    finally:
        conn.close()


def test_per_user_totals_in_the_redshift_stand_in_equal_the_sources(compose_env):
    source = _per_user_totals(
        f"postgresql://stack:stack-local-password@127.0.0.1:{compose_env['SOURCE_POSTGRES_PORT']}/tracking",
        "public",
    )
    target = _per_user_totals(
        f"postgresql://stack:stack-local-password@127.0.0.1:{compose_env['REDSHIFT_PORT']}/dev?sslmode=disable",
        TARGET_SCHEMA,
    )
    assert len(source) > 1000, f"only {len(source)} users in the source: was the demo data loaded?"
    assert source.keys() == target.keys(), (
        f"users only in the source: {sorted(source.keys() - target.keys())[:10]}, "
        f"only in the target: {sorted(target.keys() - source.keys())[:10]}"
    )
    differing = {
        user: (source[user], target[user])
        for user in source
        if not all(math.isclose(s, t, abs_tol=TOLERANCE) for s, t in zip(source[user], target[user]))
    }
    assert not differing, f"{len(differing)} users differ, e.g. {list(differing.items())[:5]}"


def test_down_leaves_no_container_volume_or_network(compose, compose_env, timings):
    import docker

    started = time.monotonic()
    compose.stop(down=True)  # docker compose down --volumes
    timings["down -v"] = time.monotonic() - started
    client = docker.from_env()
    try:
        label = f"com.docker.compose.project={compose_env['COMPOSE_PROJECT_NAME']}"
        left = {
            "containers": [c.name for c in client.containers.list(all=True, filters={"label": label})],
            "volumes": [v.name for v in client.volumes.list(filters={"label": label})],
            "networks": [n.name for n in client.networks.list(filters={"label": label})],
        }
    finally:
        client.close()
    assert left == {"containers": [], "volumes": [], "networks": []}, left
