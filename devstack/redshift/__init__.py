"""A local Redshift: a wire-protocol stand-in in front of a PostgreSQL database.

The real Redshift driver (redshift_connector, which the Amazon provider's
RedshiftSQLHook and S3ToRedshiftOperator use) and psycopg2 talk to it unchanged.
It is a test double, not an engine: see devstack/redshift/README section in the
project README ("Local Redshift") for what it reproduces and what it does not.

    LocalRedshift(backend=postgres, s3_endpoint_url=s3.endpoint_url).start()

runs the proxy in a subprocess of its own (``python -m devstack.redshift serve``)
so that it does not share the caller's GIL.

The package, by layer (protocol at the top, PostgreSQL below):

    server.py       listening server and startup handshake (SSL refused, cancel, parameters)
    session.py      one client session: a handle_<message>/on_<message> per message type
    protocol.py     message codes, the Framer (both directions), message builders
    rewrite.py      Redshift SQL -> PostgreSQL SQL at token level (tokens.py: the lexer;
                    psql_compat.py: psql's catalog queries for an 8.0.2 server)
    errors.py       Redshift's wording: load failures, VARCHAR length, error 1023
    catalog.py      what the proxy asks the backend itself (SQL in sql/*.sql)
    copy_in.py      one COPY FROM 's3://...' fed to the backend's COPY FROM STDIN
    copy/           the COPY itself: statement, files, passthrough, convert, datetimes,
                    fastpath, stream
    compat/*.sql    the Redshift system objects and semantics installed in the backend
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devstack.net import free_port, port_is_open, stop_process, wait_for_port

# The compatibility catalog, installed in this order (a later file uses an earlier one's objects)
COMPAT_SQL_FILES = tuple(
    Path(__file__).with_name("compat") / f"{name}.sql"
    for name in (
        "system_tables",
        "datetime_functions",
        "functions",
        "table_definitions",
        "late_binding_views",
    )
)
BACKEND_DSN_ENV = "DEVSTACK_REDSHIFT_BACKEND_DSN"


# pg_advisory_xact_lock key: one compat install at a time per backend cluster
COMPAT_INSTALL_LOCK = 0x5244_5348_4946_5431  # "RDSHIFT1"


def compat_sql() -> str:
    """The whole compatibility catalog, as one script."""
    return "\n".join(path.read_text() for path in COMPAT_SQL_FILES)


def install_compat_catalog(dsn: str) -> None:
    """Create (or refresh) the Redshift system objects and DDL semantics in the backend database.

    In one transaction under an advisory lock: two stand-ins starting on one
    backend (a test's second stand-in, `python -m devstack.redshift
    --backend-dsn`, `make stack-up`) otherwise race on the same CREATE OR REPLACE
    and fail with "tuple concurrently updated" or a duplicate pg_type key; and a
    failed install leaves the previous catalog whole.
    """
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("set client_min_messages = warning")
            cur.execute("set allow_system_table_mods = on")  # its objects live in pg_catalog
            cur.execute("select pg_catalog.pg_advisory_xact_lock(%s)", (COMPAT_INSTALL_LOCK,))
            cur.execute(compat_sql())
        conn.commit()
    finally:
        conn.close()


@dataclass
class LocalRedshift:
    """The Redshift stand-in, listening on host:port, in front of `backend`'s database."""

    backend: object
    s3_endpoint_url: str
    database: str = "dev"
    port: int = 0
    host: str = "127.0.0.1"
    s3_access_key_id: str = "stack-access-key"
    s3_secret_access_key: str = "stack-secret-key-never-logged"
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def user(self) -> str:
        return self.backend.user

    @property
    def password(self) -> str:
        return self.backend.password

    def dsn(self) -> str:
        """A libpq/psycopg2 URL for the stand-in (not the backend)."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def backend_dsn(self) -> str:
        """The PostgreSQL database behind the stand-in, as its administrator: to see or change
        the target behind the stand-in's back (its locks, a damaged row), or to grant on it."""
        return self.backend.dsn(self.database)

    def connect_kwargs(self) -> dict:
        """Keyword arguments for redshift_connector.connect()."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.database,
            "ssl": False,
        }

    def env(self, user: str | None = None, password: str | None = None) -> dict[str, str]:
        """The Airflow connection to the stand-in, as `user` (default: its administrator)."""
        return {
            "AIRFLOW_CONN_REDSHIFT_DEFAULT": json.dumps(
                {
                    "conn_type": "redshift",
                    "host": self.host,
                    "port": self.port,
                    "login": user or self.user,
                    "password": password if user else self.password,
                    "schema": self.database,
                    "extra": {"ssl": False},
                }
            )
        }

    def start(self) -> LocalRedshift:
        try:
            self.backend.create_database(self.database)
        except Exception as exc:  # already there after a restart
            if "already exists" not in str(exc):
                raise
        backend_dsn = self.backend_dsn()
        install_compat_catalog(backend_dsn)
        if not self.port:
            self.port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            BACKEND_DSN_ENV: backend_dsn,
        }
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devstack.redshift",
                "serve",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--s3-endpoint-url",
                self.s3_endpoint_url,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.host, self.port, timeout=20)
        except TimeoutError:
            self.stop()
            raise
        if self._process.poll() is not None:
            raise RuntimeError(f"the Redshift stand-in exited with {self._process.returncode}")
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_listening(self) -> bool:
        return port_is_open(self.host, self.port)


__all__ = ["LocalRedshift", "compat_sql", "install_compat_catalog"]
