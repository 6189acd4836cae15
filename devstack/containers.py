"""Pick how the local stack runs: Docker containers when an engine answers, local processes otherwise.

testcontainers raises DockerException at once when no engine is reachable (it
does not wait or skip), so probing costs nothing on machines without Docker.
The Redshift stand-in always runs as a local process in front of whichever
PostgreSQL was started.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from devstack.postgres import PostgresServer
from devstack.s3 import LocalS3
from devstack.stack import Stack

log = logging.getLogger(__name__)

POSTGRES_IMAGE = "postgres:15"
MOTO_IMAGE = "motoserver/moto:5.1.0"


def docker_engine_answers() -> bool:
    if os.environ.get("DEVSTACK_NO_DOCKER"):
        return False
    try:
        from docker.errors import DockerException
        from testcontainers.core.docker_client import DockerClient
    except ImportError:
        return False
    try:
        DockerClient().client.ping()
        return True
    except DockerException:
        return False
    except Exception as exc:  # an engine that answers oddly is no engine for us
        log.info("Docker engine unusable (%s); using local processes", exc)
        return False


@dataclass
class ContainerPostgres(PostgresServer):
    """PostgreSQL in a container, with the same surface as devstack.postgres.LocalPostgres."""

    _container: object | None = field(default=None, init=False, repr=False)
    host: str = "127.0.0.1"
    port: int = 0
    user: str = "stack"
    password: str = "stack-local-password"

    def start(self) -> ContainerPostgres:
        from testcontainers.postgres import PostgresContainer

        container = (
            PostgresContainer(POSTGRES_IMAGE, username=self.user, password=self.password, dbname="postgres")
            .with_env("POSTGRES_HOST_AUTH_METHOD", "md5")
            .with_env("POSTGRES_INITDB_ARGS", "--auth-host=md5")
        )
        container.with_command("postgres -c password_encryption=md5 -c fsync=off -c max_connections=200")
        self._container = container.start()
        self.host = container.get_container_host_ip()
        self.port = int(container.get_exposed_port(5432))
        return self

    def stop(self) -> None:
        if self._container is not None:
            self._container.stop()
            self._container = None


@dataclass
class ContainerS3(LocalS3):
    """moto's S3 server in a container."""

    _container: object | None = field(default=None, init=False, repr=False)

    def start(self) -> ContainerS3:
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        container = DockerContainer(MOTO_IMAGE).with_exposed_ports(5000)
        self._container = container.start()
        wait_for_logs(container, "Running on", timeout=30)
        self.host = container.get_container_host_ip()
        self.port = int(container.get_exposed_port(5000))
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        if self._container is not None:
            self._container.stop()
            self._container = None


def start_stack(with_redshift: bool = True) -> Stack:
    if docker_engine_answers():
        log.info("Docker engine found: PostgreSQL and S3 run in containers")
        stack = Stack(postgres=ContainerPostgres(), s3=ContainerS3(), with_redshift=with_redshift)
    else:
        log.info("no Docker engine: PostgreSQL and S3 run as local processes")
        stack = Stack(with_redshift=with_redshift)
    return stack.start()
