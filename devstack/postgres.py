"""A throwaway PostgreSQL cluster built from the server binaries on this machine.

initdb refuses to run as root, so when we are root the cluster is created and
run as an unprivileged user (``postgres`` when it exists, ``nobody`` otherwise).
Durability is off (fsync, full_page_writes, synchronous_commit): the data is
disposable and tests want speed. wal_level is logical, as change capture needs on the source. Passwords are checked with md5 on TCP, because
the real Redshift driver fails on SCRAM (see ../shared/redshift-facts.md).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.net import free_port, wait_for_port

SUPERUSER = "stack"
SUPERUSER_PASSWORD = "stack-local-password"


class PostgresNotInstalled(RuntimeError):
    pass


def server_bindir() -> Path:
    """Directory holding initdb/pg_ctl/postgres: PATH first, then Debian's layout."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise PostgresNotInstalled(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or under "
        "/usr/lib/postgresql/*/bin. Install them: `apt-get install -y postgresql` "
        "(Debian) — `make test` and `make demo` do this for you when run as root."
    )


def _run_as() -> str | None:
    """The unprivileged user to run the server as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer:
    """What every PostgreSQL of the stack offers (local, in a container, or given by DSN).

    Subclasses set host, port, user and password.
    """

    host: str
    port: int
    user: str
    password: str

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        import psycopg2

        conn = psycopg2.connect(self.dsn(dbname))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create_database(self, name: str) -> str:
        self.execute(f'create database "{name}"')
        return self.dsn(name)


@dataclass
class LocalPostgres(PostgresServer):
    """One PostgreSQL cluster on 127.0.0.1 at a free port, removed on stop()."""

    port: int = 0
    base_dir: Path | None = None
    _owns_dir: bool = field(default=False, init=False)
    _user: str | None = field(default=None, init=False)

    host = "127.0.0.1"
    user = SUPERUSER
    password = SUPERUSER_PASSWORD

    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "data"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self._user, "--", *args] if self._user else list(args)

    def start(self) -> LocalPostgres:
        bindir = server_bindir()
        self._user = _run_as()
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="devstack-pg-"))
            self._owns_dir = True
        self.base_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base_dir, 0o755)  # the server user must reach its data dir
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._user:
            pw = pwd.getpwnam(self._user)
            os.chown(self.base_dir, pw.pw_uid, pw.pw_gid)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        subprocess.run(
            self._cmd(
                str(bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=md5",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            text=True,
        )
        pwfile.unlink()
        if not self.port:
            self.port = free_port()
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.base_dir),
            "password_encryption": "md5",
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "max_connections": "200",
            "shared_buffers": "256MB",
            "timezone": "UTC",
            # Change capture (tracking_sync.capture) reads the source through a logical
            # replication slot: pgoutput needs wal_level = logical, and each test of it owns a
            # slot of its own (PostgreSQL's defaults: 10 slots, 10 WAL senders).
            "wal_level": "logical",
            "max_replication_slots": "64",
            "max_wal_senders": "10",
        }
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            for name, value in options.items():
                conf.write(f"{name} = '{value}'\n")
        result = subprocess.run(
            self._cmd(
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.base_dir / "server.log"),
                "-w",
                "-t",
                "30",
                "start",
            ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            log = (self.base_dir / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{log}")
        wait_for_port(self.host, self.port, timeout=10)
        return self

    def stop(self) -> None:
        if self.base_dir is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                self._cmd(
                    str(server_bindir() / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "30",
                    "stop",
                ),
                capture_output=True,
                text=True,
            )
        deadline = time.monotonic() + 10
        while (self.data_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._owns_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
