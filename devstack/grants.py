"""The pipeline's roles on the local stack, made from the same grant scripts a deployment runs.

include/sql/postgres/grants/source_role.sql (the source role) and
include/sql/redshift/grants/pipeline_user.sql (the Redshift user) are the one source of truth:
the stack, `make demo`, `make airflow`, the compose file and the tests create their roles here,
by running those files as the administrator. `without` leaves out the statements that contain
one of its strings: the tests revoke one grant at a time that way.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = REPO_ROOT / "include" / "sql"
SOURCE_GRANTS = SQL_DIR / "postgres" / "grants" / "source_role.sql"
REDSHIFT_GRANTS = SQL_DIR / "redshift" / "grants" / "pipeline_user.sql"
# The capture's publication: tracking_sync.capture.slot.PUBLICATION (the stack imports nothing
# from the pipeline; tests/devstack/test_grants.py checks they agree).
PUBLICATION = "tracking_sync_action"

SOURCE_ROLE = "tracking_reader"
REDSHIFT_USER = "tracking_loader"


def grant_statements(path: Path, **params: str) -> list[str]:
    """The script's statements, rendered with its params, comments dropped."""
    import jinja2
    import sqlparse

    text = jinja2.Template(path.read_text(), undefined=jinja2.StrictUndefined).render(**params)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip().rstrip(";") for s in sqlparse.split(text) if s.strip()]


def run_statements(dsn: str, statements: Iterable[str]) -> None:
    """Each statement in turn, autocommitted, on a connection of its own (as the administrator)."""
    import psycopg2

    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def source_role_statements(role: str, database: str, without: Iterable[str] = ()) -> list[str]:
    statements = grant_statements(
        SOURCE_GRANTS, role=_quote(role), database=_quote(database), publication=PUBLICATION
    )
    return [s for s in statements if not any(part in s for part in without)]


def create_source_role(
    admin_dsn: str, role: str, password: str, database: str, without: Iterable[str] = ()
) -> None:
    """CREATE ROLE (or reset its password) and run the source grant script for it, as the
    administrator connected by admin_dsn (a superuser of the source, in `database`)."""
    create = (
        f"do $$ begin if not exists (select from pg_roles where rolname = {_literal(role)}) then "
        f"create role {_quote(role)} login; end if; end $$"
    )
    statements = source_role_statements(role, database, without)
    run_statements(
        admin_dsn, [create, f"alter role {_quote(role)} password {_literal(password)}", *statements]
    )


def redshift_user_statements(user: str, database: str, without: Iterable[str] = ()) -> list[str]:
    statements = grant_statements(REDSHIFT_GRANTS, user=_quote(user), database=_quote(database))
    return [s for s in statements if not any(part in s for part in without)]


def create_redshift_user(
    admin_dsn: str, user: str, password: str, database: str, without: Iterable[str] = ()
) -> None:
    """CREATE USER (or reset its password) and run the Redshift grant script for it, as the
    stand-in's administrator (admin_dsn: through the stand-in or on its backend database)."""
    create = (
        f"do $$ begin if not exists (select from pg_roles where rolname = {_literal(user)}) then "
        f"create role {_quote(user)} login; end if; end $$"
    )
    statements = redshift_user_statements(user, database, without)
    run_statements(
        admin_dsn, [create, f"alter role {_quote(user)} password {_literal(password)}", *statements]
    )


def drop_role(admin_dsn: str, role: str) -> None:
    """Drop a role made here, with what it owns and was granted in admin_dsn's database."""
    run_statements(
        admin_dsn, [f"drop owned by {_quote(role)} cascade", f"drop role if exists {_quote(role)}"]
    )
