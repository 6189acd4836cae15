"""Fixtures of the compose test: a Docker engine, and docker-compose.yaml brought up through
testcontainers' DockerCompose under a project name and host ports of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from devstack.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_ROWS = 30_000


def pytest_configure(config):
    config.addinivalue_line("markers", "compose: brings docker-compose.yaml up in a Docker engine")


def _engine_problem() -> str | None:
    """Why the compose test cannot run here, or None when an engine and `docker compose` answer."""
    if not shutil.which("docker"):
        return "the docker CLI is not installed"
    info = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True
    )
    if info.returncode != 0:
        return (
            f"no Docker engine answers (DOCKER_HOST={os.environ.get('DOCKER_HOST', 'unset')}): "
            "start one with `make docker-engine` (as root: installs docker.io when missing), then "
            '`eval "$(docker/engine.sh env)"`'
        )
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if compose.returncode != 0:
        return "`docker compose` (Compose v2) is missing: `make docker-engine` installs the plugin"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    problem = _engine_problem()
    if problem and os.environ.get("CI"):
        pytest.fail(f"CI must run the compose test, but {problem}", pytrace=False)
    if problem:
        pytest.skip(problem)


# Seconds per phase, printed at the end of the session (the figures the README quotes).
TIMINGS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        figures = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in TIMINGS.items())
        terminalreporter.write_line(f"compose test timings: {figures}")


@pytest.fixture(scope="module")
def timings() -> dict[str, float]:
    return TIMINGS


@pytest.fixture(scope="module")
def compose_env(docker_engine, timings):
    """The environment `docker compose` runs with: project name, free host ports, base image."""
    started = time.monotonic()
    base = subprocess.run(
        [str(REPO_ROOT / "docker" / "base-image.sh")], capture_output=True, text=True, timeout=900
    )
    assert base.returncode == 0, f"docker/base-image.sh failed:\n{base.stderr}"
    timings["base image"] = time.monotonic() - started
    env = {
        "COMPOSE_PROJECT_NAME": f"tracking-sync-test-{uuid.uuid4().hex[:8]}",
        "COMPOSE_PROFILES": "localstack",
        "BASE_IMAGE": base.stdout.strip(),
        "AIRFLOW_API_PORT": str(free_port()),
        "SOURCE_POSTGRES_PORT": str(free_port()),
        "S3_PORT": str(free_port()),
        "REDSHIFT_PORT": str(free_port()),
        "DEMO_ROWS": str(DEMO_ROWS),
        "TESTCONTAINERS_RYUK_DISABLED": "true",  # its reaper image cannot be pulled: down -v cleans up
    }
    if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode != 0:
        env["DOCKER_BUILDKIT"] = "0"  # BuildKit would pull moby/buildkit first
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield env


@pytest.fixture(scope="module")
def compose(compose_env, timings):
    """docker-compose.yaml built, up and healthy (`up --build --wait`); `down -v` at the end."""
    from testcontainers.compose import DockerCompose

    project = DockerCompose(
        context=REPO_ROOT, compose_file_name="docker-compose.yaml", build=True, wait=True, quiet_build=True
    )
    started = time.monotonic()
    # Built apart first only to time the build alone; `up --build` below then finds it cached.
    build = subprocess.run(
        ["docker", "compose", "build", "--quiet"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert build.returncode == 0, f"docker compose build failed:\n{build.stderr[-6000:]}"
    timings["image build"] = time.monotonic() - started
    started = time.monotonic()
    try:
        project.start()
    except subprocess.CalledProcessError as error:
        logs = subprocess.run(
            ["docker", "compose", "logs", "--tail", "40"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout
        project.stop()
        pytest.fail(
            f"docker compose up failed:\n{error.stderr.decode(errors='replace')[-4000:]}\n"
            f"logs:\n{logs[-8000:]}",
            pytrace=False,
        )
    timings["up --wait"] = time.monotonic() - started
    yield project
    project.stop()  # no-op when the last test already brought it down
