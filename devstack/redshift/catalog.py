"""Catalog lookups and stl_load_errors: what the stand-in asks its backend for itself.

The SQL lives in sql/*.sql beside this module. Two ways to ask:

- CatalogConnection: a superuser connection of the proxy's own, autocommit and
  apart from every client session, so the load errors it writes survive the
  client's rollback (docs: r_STL_LOAD_ERRORS);
- copy_target_query(): the COPY target's columns asked IN the client's session,
  the only one that sees that session's #temp tables and uncommitted tables; its
  answer comes back in the session's own result stream (copy_target_from_rows).
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from pathlib import Path

from devstack.redshift.copy import CopyLoadError, CopySpec, RejectedRow, TargetColumn

SQL_DIR = Path(__file__).with_name("sql")
# the alias of select_table_columns.sql's first column: marks the in-session answer
COPY_TARGET_MARKER = b"__rs_copy_target__"

CopyTarget = tuple[int, list[TargetColumn]]  # (table oid, the columns in COPY order)


@functools.cache
def load_sql(name: str) -> str:
    """The text of sql/<name>.sql."""
    return (SQL_DIR / f"{name}.sql").read_text()


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def copy_target_query(spec: CopySpec) -> str:
    """The target's columns, to run in the client's session (select_table_columns.sql)."""
    relation = f"pg_catalog.to_regclass({quote_literal(spec.target_sql)})"
    return load_sql("select_table_columns").format(relation=relation)


def copy_target_from_rows(rows: list[list[str | None]], spec: CopySpec) -> CopyTarget | None:
    """copy_target_query()'s text rows → the target, or None when the table or a column is unknown."""
    if not rows:
        return None
    columns = [TargetColumn(r[0], r[1], int(r[2]), r[3] == "t", r[4]) for r in rows]
    table_oid = int(rows[0][5])
    if spec.columns:
        by_name = {c.name: c for c in columns}
        if any(c not in by_name for c in spec.columns):
            return None  # PostgreSQL reports the unknown column itself
        return table_oid, [by_name[c] for c in spec.columns]
    return table_oid, columns


class CatalogConnection:
    """The proxy's own autocommit connection to the backend database, shared by its sessions."""

    def __init__(self, host: str, port: int, user: str, password: str, database: str) -> None:
        self._params = {"host": host, "port": port, "user": user, "password": password, "dbname": database}
        self._conn = None
        self._lock = threading.Lock()

    def _connect(self):
        import psycopg2

        if self._conn is None or self._conn.closed:
            self._conn = psycopg2.connect(**self._params, application_name="redshift-stand-in")
            self._conn.autocommit = True
        return self._conn

    def query(self, sql: str, params=None) -> list[tuple]:
        """Rows of one statement; reconnects once when the backend closed the connection."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    with self._connect().cursor() as cur:
                        cur.execute(sql, params)
                        return cur.fetchall() if cur.description else []
                except Exception:
                    if attempt == 2 or (self._conn is not None and not self._conn.closed):
                        raise
                    self._conn = None
        return []

    def setting_names(self) -> set[str]:
        return {row[0].lower() for row in self.query(load_sql("select_setting_names"))}

    def copy_target(self, backend_pid: int, spec: CopySpec) -> CopyTarget:
        """The table a session's running COPY writes to, found by the lock it holds.

        For a client that pipelines its COPY (the target was not asked in-session):
        the session's #temp tables are invisible by name from here, but the
        RowExclusiveLock COPY took on the target is visible with the backend's pid.
        """
        rows = self.query(
            load_sql("select_copy_target_by_lock"),
            {"pid": backend_pid, "table": spec.table, "schema": spec.schema},
        )
        if not rows:
            raise CopyLoadError(f'relation "{spec.table}" was not found for COPY', sqlstate="42P01")
        oid = rows[0][0]
        columns = [
            TargetColumn(r[0], r[1], r[2], r[3], r[4])
            for r in self.query(load_sql("select_table_columns").format(relation="%(oid)s"), {"oid": oid})
        ]
        if spec.columns:
            by_name = {c.name: c for c in columns}
            missing = [c for c in spec.columns if c not in by_name]
            if missing:
                raise CopyLoadError(
                    f'column "{missing[0]}" of relation "{spec.table}" does not exist',
                    sqlstate="42703",
                )
            return oid, [by_name[c] for c in spec.columns]
        return oid, columns

    def record_load_errors(
        self,
        rows: list[RejectedRow],
        *,
        user: str,
        tbl: int,
        session: int,
        query: int,
        starttime: dt.datetime,
    ) -> None:
        """Write a COPY's rejected rows into stl_load_errors, cut to its column widths."""
        if not rows:
            return
        import psycopg2.extras

        user_ids = self.query(load_sql("select_user_id"), {"user": user})
        userid = user_ids[0][0] if user_ids else None
        values = [
            (
                userid,
                0,
                tbl,
                starttime,
                session,
                query,
                r.filename,
                r.line_number,
                r.colname,
                r.type,
                r.col_length,
                r.position,
                r.raw_line[:1024],
                r.raw_field_value[:1024],
                r.err_code,
                r.err_reason[:100],
                0,
                0,
            )
            for r in rows
        ]
        with self._lock:
            with self._connect().cursor() as cur:
                psycopg2.extras.execute_values(cur, load_sql("insert_load_errors"), values)

    def relation_id(self, name: str) -> int:
        """The table's oid, 0 when not found (or not a valid name)."""
        try:
            return self.query(load_sql("select_relation_id"), {"name": name})[0][0]
        except Exception:  # a name to_regclass cannot parse: the error text goes without it
            return 0

    def next_query_id(self) -> int:
        return self.query(load_sql("select_next_query_id"))[0][0]
