"""Redis from Debian's redis-server, as the Celery broker of a local Airflow deployment.

A throwaway server: a free port on 127.0.0.1, a folder of its own (its log; nothing else is
written there: no RDB snapshots, no append-only file), in a session of its own so that
nothing it starts outlives stop().

    redis = LocalRedis(Path("/tmp/x/redis")).start()
    redis.url           # redis://127.0.0.1:<port>/0
    redis.stop()
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.net import free_port, stop_process

HOST = "127.0.0.1"
INSTALL_HINT = "sudo apt-get install -y redis-server"


class RedisNotInstalled(RuntimeError):
    """redis-server is not on this machine; the message says how to install it."""


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )
    if not found:
        raise RedisNotInstalled(
            f"redis-server (the Celery broker) is not installed: {INSTALL_HINT} "
            "(`make test` installs it when it runs as root)"
        )
    return found


@dataclass
class LocalRedis:
    directory: Path
    port: int = 0
    startup_timeout: float = 20
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.directory / "redis.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> LocalRedis:
        binary = redis_server_binary()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self._process = subprocess.Popen(
            [
                binary,
                "--bind", HOST,
                "--port", str(self.port),
                "--dir", str(self.directory),
                "--logfile", str(self.log_file),
                "--save", "",  # no RDB snapshots
                "--appendonly", "no",
                "--daemonize", "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not self.ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
                raise RuntimeError(f"redis-server did not answer PING on {HOST}:{self.port}:\n{log}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None
