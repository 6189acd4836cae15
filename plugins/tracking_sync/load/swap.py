"""The full refresh's publish: swap the loaded staging table in as the target, in one transaction.

Each row is written once (RENAME, the target's grants granted again). When a swap would change
what the target is -- a view bound to it (not late-binding), another owner, other column
definitions, grants it cannot read back -- swap_in returns None and logs why, and the publish
copies the rows instead, as an incremental run does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tracking_sync.core.sql import render_sql, render_statements
from tracking_sync.core.tables import ACTION, NULL_MARKER_SQL, marker_flag

log = logging.getLogger(__name__)


# What the old table is called between the swap's RENAME and its DROP, in one transaction.
REPLACED_TABLE = "action_replaced_by_full_refresh"

# pg_class.relacl's letters for table privileges that Redshift and PostgreSQL read alike
# (docs: r_PG_DEFAULT_ACL; R is Redshift's RULE). D is DROP on Redshift and TRUNCATE on
# PostgreSQL, and newer letters are engine-specific: a grant with any other letter is not
# re-applied by guesswork, the publish copies instead (the target keeps its grants).
PRIVILEGE_LETTERS = {
    "r": "select",
    "a": "insert",
    "w": "update",
    "d": "delete",
    "x": "references",
    "t": "trigger",
    "R": "rule",
}


@dataclass(frozen=True)
class Grant:
    """Privileges on the target to grant again to one grantee after a swap."""

    grantee: str  # as GRANT takes it: "name", group "name" or public
    privileges: tuple[str, ...]
    grant_option: bool = False


def parse_acl(acl: str | None, owner: str) -> list[Grant]:
    """The grants of a pg_class.relacl text (entries joined by '|'), the owner's own left out.

    An entry reads grantee=privileges/grantor: grantee empty for PUBLIC, "group name" for a
    Redshift group, a name in double quotes when it needs them; * after a letter is WITH
    GRANT OPTION. Raises ValueError on a letter outside PRIVILEGE_LETTERS.
    """
    grants = []
    for entry in (acl or "").split("|"):
        entry = entry.strip().strip('"') if entry.strip().startswith('"group ') else entry.strip()
        if not entry:
            continue
        who_and_what, _, _grantor = entry.rpartition("/")
        who, _, letters = who_and_what.rpartition("=")
        group = who.startswith("group ")
        name = _unquote(who[len("group ") :] if group else who)
        if name == owner and not group:
            continue  # the new table's owner is the publisher, the old table's owner
        plain, with_option = [], []
        for i, letter in enumerate(letters):
            if letter == "*":
                continue
            if letter not in PRIVILEGE_LETTERS:
                raise ValueError(f"privilege letter {letter!r} in the grant {entry!r}")
            optioned = i + 1 < len(letters) and letters[i + 1] == "*"
            (with_option if optioned else plain).append(PRIVILEGE_LETTERS[letter])
        grantee = "public" if not name else ("group " if group else "") + _quote(name)
        if plain:
            grants.append(Grant(grantee, tuple(plain)))
        if with_option:
            grants.append(Grant(grantee, tuple(with_option), grant_option=True))
    return grants


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def swap_statements(schema: str, staging: str, grants: list[Grant]) -> list[str]:
    return render_statements(
        "redshift/swap_in_action.sql",
        schema=schema,
        staging=staging,
        replaced=REPLACED_TABLE,
        flagged=[(c.name, marker_flag(c.name)) for c in ACTION.columns if c.travels_with_null_flag],
        marker=NULL_MARKER_SQL,
        grants=grants,
    )


def swap_in(
    connection: Any, schema: str, staging: str, record: Callable[[Any], None] | None = None
) -> int | None:
    """Swap the full refresh's staging table in as the target, in one transaction: the rows
    swapped in, or None (and nothing changed) when the swap would change more than the rows,
    the reason logged."""
    cursor = connection.cursor()
    cursor.paramstyle = "pyformat"
    try:
        for statement in render_statements("redshift/lock_action.sql", schema=schema):
            cursor.execute(statement)
        grants, refusal = _swap_grants(cursor, schema, staging)
        if refusal is None:
            cursor.execute(f"select count(*) from {schema}.{staging}")
            (rows,) = cursor.fetchone()
            if record is not None:
                record(cursor)
            for statement in swap_statements(schema, staging, grants):
                cursor.execute(statement)
            connection.commit()
            log.info(
                "full refresh: swapped %s.%s in as %s.action (%s rows written once; %s grants re-applied)",
                schema,
                staging,
                schema,
                rows,
                len(grants),
            )
            return int(rows)
        connection.rollback()
    except BaseException as error:
        connection.rollback()
        if not _is_dependent_objects_error(error):
            raise
        refusal = (
            f"objects bound to {schema}.action (a view without WITH NO SCHEMA BINDING, a "
            f"materialized view or a foreign key) would lose it: {_first_line(error)}"
        )
    finally:
        cursor.close()
        _reset_search_path(connection)
    log.warning(
        "full refresh: copying the rows into %s.action instead of swapping the loaded table in, "
        "because %s. The result is the same; the copy writes every row a second time. To "
        "publish by swap, recreate such views WITH NO SCHEMA BINDING (late-binding).",
        schema,
        refusal,
    )
    return None


def _swap_grants(cursor: Any, schema: str, staging: str) -> tuple[list[Grant], str | None]:
    """The grants to re-apply after the swap, or why the swap must not happen."""
    cursor.execute(render_sql("redshift/select_action_swap_facts.sql", schema=schema), {"table": "action"})
    owner, publisher, acl = cursor.fetchone()
    if str(owner).strip() != str(publisher).strip():
        return [], f"{schema}.action belongs to {owner}, not to the publishing user {publisher}"
    try:
        grants = parse_acl(acl, str(owner).strip())
    except ValueError as error:
        return [], f"the target's grants cannot all be granted again ({error})"
    cursor.execute(render_sql("redshift/select_action_role_grants.sql", schema=schema), {"table": "action"})
    by_role: dict[str, list[str]] = {}
    for role, privilege in cursor.fetchall():
        by_role.setdefault(str(role).strip(), []).append(str(privilege).strip().lower())
    grants += [Grant(f"role {_quote(role)}", tuple(privileges)) for role, privileges in by_role.items()]
    cursor.execute(f"set search_path to {schema}")
    cursor.execute(
        render_sql("redshift/select_action_table_definitions.sql", schema=schema),
        {"target": "action", "staging": staging},
    )
    flags = {marker_flag(c.name) for c in ACTION.columns if c.travels_with_null_flag}
    definitions: dict[str, set[tuple]] = {"action": set(), staging: set()}
    for table, *definition in cursor.fetchall():
        if definition[0] not in flags:
            definitions[str(table).strip()].add(tuple(str(v).strip() for v in definition))
    if definitions["action"] != definitions[staging]:
        differing = sorted(definitions["action"] ^ definitions[staging])[:4]
        return [], f"{schema}.action's columns differ from the template's ({differing})"
    return grants, None


def _reset_search_path(connection: Any) -> None:
    """Back to the session's default search_path (PG_TABLE_DEF needed the target schema on it).
    Best effort: after a lost connection this fails too, and the first error is the one to see."""
    try:
        cursor = connection.cursor()
        try:
            cursor.execute("reset search_path")
            connection.commit()
        finally:
            cursor.close()
    except Exception as error:  # noqa: BLE001 - the publish's own outcome is already decided
        log.debug("could not reset search_path: %s", error)


def _is_dependent_objects_error(error: BaseException) -> bool:
    """PostgreSQL's and Redshift's refusal to drop a table that other objects depend on
    (SQLSTATE 2BP01, "cannot drop table ... because other objects depend on it")."""
    text = str(error)
    return "2BP01" in text or "because other objects depend on it" in text


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
