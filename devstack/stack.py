"""The local stack: source PostgreSQL, S3 (moto) and the Redshift stand-in, started together.

The stand-in's backing database (`dev`) lives in a PostgreSQL cluster of its own, as Redshift
is not the source's server in production: the source's WAL, which the change capture's
logical replication slot decodes and whose retained size on-call reads, holds the source's
writes only, not a full refresh's COPY into the target.

Used three ways: by the pytest fixtures, by `make demo`, and by `make stack-up`
(`python -m devstack up`), which keeps it running in the background and writes
`.devstack/env` for a shell or `airflow standalone` to source.
"""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devstack.grants import REDSHIFT_USER, SOURCE_ROLE, create_redshift_user, create_source_role
from devstack.postgres import LocalPostgres
from devstack.s3 import LocalS3

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_SQL_DIR = REPO_ROOT / "include" / "sql" / "postgres"
SOURCE_DATABASE = "tracking"
# The pipeline's roles on the stack, made from the grant scripts (devstack.grants): the
# Airflow connections the stack hands out use them, not the superuser. Local passwords.
SOURCE_ROLE_PASSWORD = "reader-local-password"
REDSHIFT_USER_PASSWORD = "loader-local-password"


def create_source_schema(dsn: str) -> None:
    """Create `action` and `action_type` (and its dictionary rows) from include/sql/postgres/."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name in ("create_tables.sql", "insert_action_types.sql"):
                cur.execute((SOURCE_SQL_DIR / name).read_text())
    finally:
        conn.close()


@dataclass
class Stack:
    """All local services. `redshift` is None until started with_redshift=True.

    `postgres` is the source's cluster (database `tracking`); `redshift_backend` is the
    cluster behind the stand-in (database `dev`, redshift.backend_dsn()), started only
    with_redshift. source_dsn and redshift.dsn() are the administrator's (fixtures, fault
    injection, demo data); env() gives the pipeline the narrow roles of the grant scripts."""

    postgres: LocalPostgres = field(default_factory=LocalPostgres)
    redshift_backend: LocalPostgres = field(default_factory=LocalPostgres)
    s3: LocalS3 = field(default_factory=LocalS3)
    redshift: object | None = None
    with_redshift: bool = True

    @property
    def source_dsn(self) -> str:
        """The source as its administrator (the superuser)."""
        return self.postgres.dsn(SOURCE_DATABASE)

    @property
    def source_role_dsn(self) -> str:
        """The source as the pipeline's role (include/sql/postgres/grants/source_role.sql)."""
        pg = self.postgres
        return f"postgresql://{SOURCE_ROLE}:{SOURCE_ROLE_PASSWORD}@{pg.host}:{pg.port}/{SOURCE_DATABASE}"

    @property
    def redshift_user_dsn(self) -> str:
        """The Redshift stand-in as the pipeline's user (include/sql/redshift/grants/pipeline_user.sql)."""
        rs = self.redshift
        return f"postgresql://{REDSHIFT_USER}:{REDSHIFT_USER_PASSWORD}@{rs.host}:{rs.port}/{rs.database}"

    def start(self) -> Stack:
        # The two clusters (initdb, pg_ctl) and S3 (moto's imports) are processes of their own:
        # started side by side, the stack starts about as fast as with one cluster.
        services = [self._start_source, self.s3.start]
        if self.with_redshift:
            services.append(self.redshift_backend.start)
        try:
            _side_by_side(services)
            if self.with_redshift:
                from devstack.redshift import LocalRedshift

                self.redshift = LocalRedshift(
                    backend=self.redshift_backend, s3_endpoint_url=self.s3.endpoint_url
                ).start()
                create_redshift_user(
                    self.redshift.backend_dsn(),
                    REDSHIFT_USER,
                    REDSHIFT_USER_PASSWORD,
                    self.redshift.database,
                )
        except BaseException:
            self.stop()
            raise
        return self

    def _start_source(self) -> None:
        self.postgres.start()
        self.postgres.create_database(SOURCE_DATABASE)
        create_source_schema(self.source_dsn)
        create_source_role(self.source_dsn, SOURCE_ROLE, SOURCE_ROLE_PASSWORD, SOURCE_DATABASE)

    def stop(self) -> None:
        if self.redshift is not None:
            self.redshift.stop()
            self.redshift = None
        _side_by_side([self.s3.stop, self.redshift_backend.stop, self.postgres.stop])

    def env(self) -> dict[str, str]:
        """Airflow connections and pipeline settings that point at this stack: the connections
        as the pipeline's narrow roles, SOURCE_DSN and REDSHIFT_DSN (for psql) as the admin."""
        env = {
            "AIRFLOW_CONN_POSTGRES_SOURCE": self.source_role_dsn.replace("postgresql://", "postgres://", 1),
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                {
                    "conn_type": "aws",
                    "login": self.s3.access_key_id,
                    "password": self.s3.secret_access_key,
                    "extra": {"endpoint_url": self.s3.endpoint_url, "region_name": self.s3.region},
                }
            ),
            "TRACKING_SYNC_BUCKET": self.s3.bucket,
            "SOURCE_DSN": self.source_dsn,
            "S3_ENDPOINT_URL": self.s3.endpoint_url,
        }
        if self.redshift is not None:
            env.update(self.redshift.env(REDSHIFT_USER, REDSHIFT_USER_PASSWORD))
            env["REDSHIFT_DSN"] = self.redshift.dsn()  # for psql "$REDSHIFT_DSN"
            # The stand-in's backing database, behind its back (its own cluster, not the source's)
            env["REDSHIFT_BACKEND_DSN"] = self.redshift.backend_dsn()
        return env

    def write_env_file(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"export {name}={shlex.quote(value)}" for name, value in self.env().items()]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)


def _side_by_side(steps: list[Callable[[], object]]) -> None:
    """Run each step in a thread of its own and wait for all of them, so that a failed step
    leaves no other still starting; then raise the first failure, if any."""
    failures: list[BaseException] = []

    def run(step: Callable[[], object]) -> None:
        try:
            step()
        except BaseException as exc:  # re-raised below, in the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def start_stack(with_redshift: bool = True) -> Stack:
    """Start the local stack as local processes (the pytest fixtures, `make demo`, `make stack-up`).

    Containers are docker-compose.yaml's business (README, "Run it in Docker"): the local stack
    itself needs no Docker engine, so CI runs the one code path it has.
    """
    return Stack(with_redshift=with_redshift).start()
