"""A parity check's rows out of both engines, streamed: a result never sits whole in memory.

    window = CheckWindow("public", "tracking", window_start, window_end, scope="scoped")
    source_rows, target_rows = stream_check(check, source_conn, target_conn, window)

Takes DB-API connections: psycopg 3 (what PostgresHook returns), psycopg2 and
redshift_connector (what RedshiftSQLHook returns).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracking_sync.core.errors import ParityCheckError
from tracking_sync.validate.parity import ParityCheck

FETCH_ROWS = 1000  # Redshift caps FETCH FORWARD at 1000 rows on single-node clusters (r_FETCH)


@dataclass(frozen=True)
class CheckWindow:
    """Where and over what a check runs: the schema of its tables on each engine, and the
    run's window [window_start, window_end) in `scope` (see tracking_sync.validate.parity);
    in scope "users", the listed users (checked integers, ascending; None in the others)."""

    source_schema: str
    target_schema: str
    window_start: datetime
    window_end: datetime
    scope: str
    users: tuple[int, ...] | None = None


def stream_rows(conn: Any, sql: str, batch_rows: int = FETCH_ROWS) -> Iterator[list[tuple]]:
    """Yield the query's rows in batches, never the whole result; the first item is the
    column names. Runs in its own transaction, with the session's time zone set to UTC
    (day boundaries and timestamp literals are UTC), and rolls it back at the end.

    psycopg 3 streams the result as the server sends it (cursor.stream); other drivers
    (redshift_connector, psycopg2) read through DECLARE ... CURSOR / FETCH FORWARD, which
    Redshift supports inside a transaction.
    """
    cursor = conn.cursor()
    try:
        cursor.execute("set timezone to 'UTC'")
        # psycopg 3 (redshift_connector's cursor has a `stream` attribute too: a file, not this)
        if type(cursor).__module__.startswith("psycopg.") and callable(getattr(cursor, "stream", None)):
            rows = cursor.stream(sql, size=batch_rows)
            first = list(itertools.islice(rows, batch_rows))
            yield [column.name for column in cursor.description]
            while first:
                yield first
                first = list(itertools.islice(rows, batch_rows))
        else:
            cursor.execute(f"declare parity_rows cursor for\n{sql}")
            fetch = f"fetch forward {batch_rows} from parity_rows"
            cursor.execute(fetch)
            batch = cursor.fetchall()
            yield [column[0] for column in cursor.description]
            while batch:
                yield list(batch)
                cursor.execute(fetch)
                batch = cursor.fetchall()
            cursor.execute("close parity_rows")
    finally:
        try:
            cursor.close()
        finally:
            conn.rollback()


def stream_check(
    check: ParityCheck,
    source_conn: Any,
    target_conn: Any,
    window: CheckWindow,
    base_relation: str | None = None,
) -> tuple[Iterator[tuple], Iterator[tuple]]:
    """Run one check on both engines at once; its rows on each, in the order the query
    sorts them. Refuses a result whose columns are not the ones its header declares.
    A check with a base reads `base_relation` on each engine (tracking_sync.validate.shared_pass),
    or computes its base itself when None."""
    bounds = {
        "window_start": window.window_start,
        "window_end": window.window_end,
        "scope": window.scope,
        "base_relation": base_relation,
        "users": window.users,
    }
    sql_source = check.render(schema=window.source_schema, **bounds)
    sql_target = check.render(schema=window.target_schema, **bounds)
    source_columns, source_batches, target_columns, target_batches = _open_both(
        source_conn, target_conn, sql_source, sql_target
    )
    for side, columns in (("source", source_columns), ("target", target_columns)):
        if tuple(name.lower() for name in columns) != check.columns:
            raise ParityCheckError(
                f"{check.path.name} returned columns {list(columns)} on the {side}; its header "
                f"declares {list(check.columns)} (keys first, then values, in that order)"
            )
    return _rows(source_batches), _rows(target_batches)


def _rows(batches: Iterator[list[tuple]]) -> Iterator[tuple]:
    for batch in batches:
        yield from batch


def _open_both(source_conn: Any, target_conn: Any, sql_source: str, sql_target: str):
    """Start both queries at once: the aggregation runs before the first row comes back,
    so the two engines work in parallel and the check costs the slower of the two."""
    source = stream_rows(source_conn, sql_source)
    target = stream_rows(target_conn, sql_target)
    with ThreadPoolExecutor(max_workers=2) as pool:
        source_first = pool.submit(lambda: (next(source), next(source, [])))
        target_first = pool.submit(lambda: (next(target), next(target, [])))
        try:
            (source_columns, source_batch) = source_first.result()
        finally:
            try:
                (target_columns, target_batch) = target_first.result()
            except BaseException:
                source.close()
                raise
    return (
        source_columns,
        itertools.chain([source_batch], source),
        target_columns,
        itertools.chain([target_batch], target),
    )
