"""Preflight of privileges: what the run's roles need, checked by reading only, in plan_run.

Every grant of the grant scripts (include/sql/postgres/grants/source_role.sql,
include/sql/redshift/grants/pipeline_user.sql) that the run will use is checked with
has_*_privilege before any data moves, and every missing one is reported in ONE failure,
each with the grant that fixes it, quoted from the script:

    source     USAGE on public, SELECT on action and action_type, TEMP on the database, and
               (logical capture) the REPLICATION attribute (rds_replication on RDS/Aurora) and
               the publication (it exists, or the role owns action and creates it)
    Redshift   CREATE and TEMP on the database; USAGE and CREATE on the target schema when it
               exists; SELECT, INSERT, UPDATE, DELETE on each of the pipeline's tables in it

CONNECT and the logins are checked by connecting. A privilege refused later anyway (one
revoked while the run runs) fails its task at once the same way (tracking_sync.oncall.refusals).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tracking_sync.capture.slot import PUBLICATION
from tracking_sync.core.errors import AccessRefused
from tracking_sync.core.sql import render_sql
from tracking_sync.core.tables import TABLES
from tracking_sync.load.sync_state import sync_state_statements
from tracking_sync.oncall.refusals import REDSHIFT, SOURCE, Refusal, grants_for


@dataclass(frozen=True)
class Missing:
    system: str  # SOURCE or REDSHIFT
    role: str
    privilege: str  # "select", "usage", "create", "temp", "replication"
    object: str  # "table public.action", "schema tracking", "database dev", "role reader"
    fix: str

    def __str__(self) -> str:
        engine = "source" if self.system == SOURCE else "Redshift"
        return f"{engine}: {self.role} lacks {self.privilege.upper()} on {self.object}; fix: {self.fix}"


class PrivilegesMissing(AccessRefused):
    """plan_run's preflight found privileges the run needs missing (each named, with its grant)."""


def _grant(system: str, words: str, role: str, database: str, default: str) -> str:
    """The statement of the grant script that grants it, found as a refusal's would be."""
    found = grants_for(Refusal(system, "42501", words), role, database)
    script = "source_role.sql" if system == SOURCE else "pipeline_user.sql"
    return f"{'; '.join(found)} (grants/{script})" if found else default


def source_missing(connection: Any, logical: bool) -> list[Missing]:
    """What the source role lacks of source_role.sql (the REPLICATION attribute only when
    the capture is logical)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(render_sql("postgres/select_source_privileges.sql"), {"publication": PUBLICATION})
            role, database, usage, action, action_type, temp, replication, publication = cursor.fetchone()
    finally:
        connection.rollback()
    missing = []

    def lacks(held: bool, privilege: str, what: str, words: str) -> None:
        if not held:
            fix = _grant(SOURCE, words, role, database, f"GRANT {privilege.upper()} ON {what} TO {role}")
            missing.append(Missing(SOURCE, role, privilege, what, fix))

    lacks(usage, "usage", "schema public", "permission denied for schema public")
    lacks(action, "select", "table public.action", "permission denied for table action")
    lacks(action_type, "select", "table public.action_type", "permission denied for table action_type")
    lacks(
        temp,
        "temp",
        f"database {database}",
        f"permission denied to create temporary tables in database {database}",
    )
    if logical:
        lacks(
            replication,
            "replication",
            f"role {role} (the attribute; RDS/Aurora: GRANT rds_replication TO {role})",
            "permission denied to use replication slots",
        )
        lacks(
            publication,
            "create publication",
            f"table public.action (publication {PUBLICATION} is missing, and only action's owner may create it)",
            "must be owner of table action",
        )
    return missing


def pipeline_table_names() -> list[str]:
    """The tables the pipeline keeps in the target schema (staging tables aside)."""
    sync_state = [
        re.search(r"create table if not exists \S+?\.(\w+)", statement).group(1)
        for statement in sync_state_statements("schema")
    ]
    return [*TABLES, *sync_state]


def redshift_missing(connection: Any, schema: str) -> list[Missing]:
    """What the Redshift user lacks of pipeline_user.sql, and of owning the target schema's
    tables (which creating them gives it)."""
    sql = render_sql("redshift/select_user_privileges.sql", schema=schema, table_names=pipeline_table_names())
    cursor = connection.cursor()
    try:
        cursor.execute("select current_user, current_database()")
        role, database = (str(value).strip() for value in cursor.fetchone())
        cursor.execute(sql)
        rows = cursor.fetchall()
    finally:
        cursor.close()
        connection.rollback()
    missing = []
    for kind, name, privilege, held in rows:
        if held:
            continue
        name = str(name).strip()
        if kind == "database":
            words = (
                f"permission denied to create temporary tables in database {name}"
                if privilege == "temp"
                else f"permission denied for database {name}"
            )
            fix = _grant(
                REDSHIFT, words, role, database, f"GRANT {privilege.upper()} ON DATABASE {name} TO {role}"
            )
        elif kind == "schema":
            fix = (
                f"ALTER SCHEMA {name} OWNER TO {role} (it was made by another user: grants/pipeline_user.sql)"
            )
        else:
            fix = (
                f"ALTER TABLE {name} OWNER TO {role} (it was made by another user: grants/pipeline_user.sql)"
            )
        missing.append(Missing(REDSHIFT, role, str(privilege), f"{kind} {name}", fix))
    return missing


def raise_for_missing(missing: list[Missing]) -> None:
    """One failure naming every missing privilege: the first on the first line (what on-call's
    summary shows), with how many more, the others below it."""
    if not missing:
        return
    first, *more = missing
    also = f" ({len(more)} more below)" if more else ""
    raise PrivilegesMissing(
        f"the run's roles lack privileges it needs: {first}{also}; nothing has moved yet (run the "
        "grant scripts as an administrator: docs/aws.md, Least privilege)" + "".join(f"\n{m}" for m in more)
    )


def check_privileges(source: Any, target: Any, schema: str, logical: bool) -> None:
    """plan_run's preflight: raises PrivilegesMissing naming every missing privilege."""
    raise_for_missing([*source_missing(source, logical), *redshift_missing(target, schema)])
