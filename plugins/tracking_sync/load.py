"""Load: COPY the staged parts into Redshift and publish them, idempotently and atomically.

- action_type is small and always moved whole: S3ToRedshiftOperator with method
  REPLACE (BEGIN; DELETE; COPY; COMMIT) into the target table.
- action moves one interval at a time: COPY (REPLACE) into the run's staging table,
  then publish_action replaces the target's rows of the interval with the staged
  rows in one transaction. Rerunning an interval gives the same target, rows deleted
  or changed in the source inside it included; a failed COPY touches only staging.
- a full refresh's staging table holds every row, loaded as the target keeps them:
  publish_action swaps it in (RENAME, in one transaction, the target's grants granted
  again), so each row is written once. When a swap would change what the target is --
  a view bound to it (not late-binding), another owner, other column definitions,
  grants it cannot read back -- it copies the rows instead, as an incremental run does,
  and logs why.

The COPY options below match export.py's CSV dialect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tracking_sync.exceptions import TooManyMovedRows
from tracking_sync.plan import RunPlan, RunSlice
from tracking_sync.sql_templates import render_sql, render_statements
from tracking_sync.tables import ACTION, NULL_MARKER_SQL, marker_flag

log = logging.getLogger(__name__)

COPY_OPTIONS = [
    "manifest",  # exactly the parts listed, each mandatory (staging.manifest_document)
    "format as csv",
    "zstd",
    # NULL is an unquoted \N; '' is written quoted (""), which Redshift loads into VARCHAR
    # as ''. EMPTYASNULL is deliberately absent: it would turn '' into NULL.
    "null as '\\N'",
    # action_time is written as 2025-01-01 12:00:00.123456+00: 'auto' reads the fraction
    # and the offset into TIMESTAMPTZ as the same instant.
    "timeformat 'auto'",
    # No TRUNCATECOLUMNS, no MAXERROR: a value that does not fit fails the load instead of
    # being cut or skipped without a word.
]


# A rerun carries rows that moved out of its interval one INSERT at a time into staging:
# fine for late corrections, not for a bulk rewrite of action_time (then rerun the days
# the rows moved to first, or a full refresh).
MAX_CARRIED_ROWS = 10_000
CARRY_BATCH_ROWS = 500


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


def publish_statements(schema: str, staging: str, run_slice: RunSlice) -> list[str]:
    return render_statements(
        "redshift/replace_action_rows.sql",
        schema=schema,
        staging=staging,
        columns=ACTION.column_names,
        expressions=ACTION.publish_expressions,
        full_refresh=run_slice.full_refresh,
    )


@dataclass
class PublishResult:
    inserted: int = 0
    carried: list[int] = field(default_factory=list)  # ids moved out of the interval, re-placed
    moved_in: list[int] = field(default_factory=list)  # staged ids the target had elsewhere
    deleted_in_source: list[int] = field(default_factory=list)  # ids gone from the source

    @property
    def placed_outside(self) -> list[int]:
        """Ids this publish wrote or removed outside its interval: validate checks them."""
        return sorted(set(self.carried) | set(self.moved_in))

    def summary(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted,
            "carried": len(self.carried),
            "moved_in": len(self.moved_in),
            "deleted_in_source": len(self.deleted_in_source),
            "placed_outside_ids": self.placed_outside,
        }


def publish_action(
    connection: Any,
    schema: str,
    staging: str,
    run_slice: RunSlice,
    read_source_rows: Callable[[list[int]], list[tuple]] | None = None,
) -> PublishResult:
    """Replace the target's rows of the slice with the staged rows, in one transaction.

    The transaction first locks the target table (a concurrent publish waits). Rows the
    target holds in the interval but the source no longer does there are looked up in
    the source by id (`read_source_rows`): those that moved to another interval are
    carried there in the same transaction; those the source deleted go. A full refresh
    swaps the staging table in instead (swap_in_action.sql) when nothing the target is
    would change by it, and copies otherwise. `connection` is a DB-API connection to
    Redshift with autocommit off.
    """
    if run_slice.full_refresh:
        swapped = _swap_in(connection, schema, staging)
        if swapped is not None:
            return swapped
    result = PublishResult()
    bounds = {} if run_slice.full_refresh else _bounds(run_slice)
    cursor = connection.cursor()
    cursor.paramstyle = "pyformat"  # redshift_connector defaults to "format"
    try:
        for statement in render_statements("redshift/lock_action.sql", schema=schema):
            cursor.execute(statement)
        if not run_slice.full_refresh:
            cursor.execute(
                render_sql("redshift/select_moved_in_action_ids.sql", schema=schema, staging=staging), bounds
            )
            result.moved_in = [row[0] for row in cursor.fetchall()]
            if read_source_rows is not None:
                _carry_moved_rows(cursor, schema, staging, bounds, read_source_rows, result)
        for statement in publish_statements(schema, staging, run_slice):
            cursor.execute(statement, bounds if "%(start)s" in statement else None)
            if statement.lower().startswith("insert"):
                result.inserted = cursor.rowcount
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()
    return result


def _swap_in(connection: Any, schema: str, staging: str) -> PublishResult | None:
    """Swap the full refresh's staging table in as the target, in one transaction; None (and
    nothing changed) when the swap would change more than the rows, the reason logged."""
    cursor = connection.cursor()
    cursor.paramstyle = "pyformat"
    try:
        for statement in render_statements("redshift/lock_action.sql", schema=schema):
            cursor.execute(statement)
        grants, refusal = _swap_grants(cursor, schema, staging)
        if refusal is None:
            cursor.execute(f"select count(*) from {schema}.{staging}")
            (rows,) = cursor.fetchone()
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
            return PublishResult(inserted=int(rows))
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


def _carry_moved_rows(
    cursor: Any,
    schema: str,
    staging: str,
    bounds: dict[str, datetime],
    read_source_rows: Callable[[list[int]], list[tuple]],
    result: PublishResult,
) -> None:
    cursor.execute(
        render_sql("redshift/select_departed_action_ids.sql", schema=schema, staging=staging), bounds
    )
    departed = [row[0] for row in cursor.fetchall()]
    if not departed:
        return
    moved = read_source_rows(departed)
    moved_ids = {row[0] for row in moved}
    result.deleted_in_source = [i for i in departed if i not in moved_ids]
    if len(moved) > MAX_CARRIED_ROWS:
        raise TooManyMovedRows(
            f"{len(moved)} action rows moved out of [{bounds['start'].isoformat()}, "
            f"{bounds['end'].isoformat()}) in the source since it was loaded (e.g. ids "
            f"{', '.join(str(row[0]) for row in moved[:5])}, now at "
            f"{', '.join(sorted({str(row[4])[:10] for row in moved[:100]}))}): more than the "
            f"{MAX_CARRIED_ROWS} a rerun carries. Rerun the days they moved to first (each "
            "carries its rows), then this one; or trigger mode=full_refresh. Nothing was changed."
        )
    columns = [column.name for column in ACTION.file_columns]
    for first in range(0, len(moved), CARRY_BATCH_ROWS):
        batch = moved[first : first + CARRY_BATCH_ROWS]
        sql = render_sql(
            "redshift/insert_carried_actions.sql",
            schema=schema,
            staging=staging,
            columns=columns,
            rows=len(batch),
        )
        cursor.paramstyle = "format"  # one %s per value
        cursor.execute(sql, [value for row in batch for value in row])
        cursor.paramstyle = "pyformat"
    result.carried = sorted(moved_ids)
    if moved:
        log.info(
            "carrying %s action rows that moved out of the interval to their new place (ids %s%s)",
            len(moved),
            ", ".join(str(i) for i in result.carried[:20]),
            ", ..." if len(moved) > 20 else "",
        )
    if result.deleted_in_source:
        log.info("%s action rows of the interval were deleted in the source", len(result.deleted_in_source))


def source_rows_by_id(source_connection: Any, ids: list[int]) -> list[tuple]:
    """The source's action rows with these ids, as the export writes them (staging columns)."""
    sql = render_sql(
        "postgres/select_actions_by_id.sql",
        columns=[column.select_expression for column in ACTION.file_columns],
    )
    with source_connection.cursor() as cursor:
        cursor.execute("set timezone to 'UTC'")
        cursor.execute(sql, {"ids": list(ids)})
        rows = cursor.fetchall()
    source_connection.rollback()
    return rows


def load_errors(connection: Any, s3_prefix: str) -> list[dict[str, Any]]:
    """The latest stl_load_errors rows for files under `s3_prefix` (s3://bucket/key/)."""
    cursor = connection.cursor()
    cursor.paramstyle = "pyformat"
    try:
        cursor.execute(render_sql("redshift/select_load_errors.sql"), {"prefix": s3_prefix + "%"})
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        cursor.close()
        connection.rollback()


PREVIEW_CHARACTERS = 60


def describe_load_error(error: dict[str, Any], table: str) -> str:
    """One rejected row as on-call needs it: the source row's id, the column, the limit,
    Redshift's reason and a preview of the value cut on a character boundary."""
    row_id = _first_csv_field(error.get("raw_line") or "")
    where = f"{table} row id {row_id}" if row_id else f"{table} row at line {error.get('line_number')}"
    limit = f" (limit {error['col_length']} bytes)" if str(error.get("col_length") or "").strip() else ""
    return (
        f"{where}, column {error.get('colname')}{limit}: {error.get('err_reason')} "
        f"[code {error.get('err_code')}]; value {preview(error.get('raw_field_value'))}; "
        f"file {error.get('filename')} line {error.get('line_number')}"
    )


def preview(value: Any, characters: int = PREVIEW_CHARACTERS) -> str:
    """A value shortened for a log line, never cut inside a character: stl_load_errors keeps
    the first bytes of a value, which may end in the middle of a multi-byte character."""
    if value is None:
        return "NULL"
    text = str(value).rstrip("\ufffd")  # a character cut in half decodes to U+FFFD
    if len(text) <= characters:
        return repr(text)
    return f"{text[:characters]!r}... ({len(text.encode())} bytes shown of a longer value)"


def format_load_errors(errors: list[dict[str, Any]], table: str = "action") -> str:
    if not errors:
        return "stl_load_errors has no rows for these files"
    return "\n".join(describe_load_error(error, table) for error in errors)


def _first_csv_field(line: str) -> str:
    import csv

    try:
        return next(csv.reader([line.split("\n", 1)[0]]))[0].strip()
    except (StopIteration, IndexError, csv.Error):
        return ""


def _bounds(run_slice: RunSlice) -> dict[str, datetime]:
    assert run_slice.start is not None and run_slice.end is not None
    # Aware datetimes: the driver sends them with their offset, so the comparison with
    # the TIMESTAMPTZ column is on the instant whatever the session time zone.
    return {"start": run_slice.start, "end": run_slice.end}


def publish_for_run(plan: RunPlan, connection: Any, source_connection: Any) -> dict[str, Any]:
    """The publish task: the run's staged action rows replace the target's rows of the slice,
    and rows that moved out of it in the source are carried to their new place."""
    result = publish_action(
        connection,
        plan.target_schema,
        plan.staging_table,
        plan.run_slice,
        read_source_rows=lambda ids: source_rows_by_id(source_connection, ids),
    )
    log.info("published %s rows of action for %s", result.inserted, plan.slice_label)
    return result.summary()
