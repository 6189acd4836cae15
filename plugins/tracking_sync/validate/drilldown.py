"""From a failed parity check to the exact `action` rows: missing, extra or changed.

What AWS DMS validation does row by row, at the cost of a few queries: each engine sums
a hash of its rows per bucket of ids (include/sql/drilldown/action_buckets.sql); the
buckets whose count or checksum differ are split into smaller buckets, level after
level (ids / 2^20, 2^15, 2^10, 2^5), until a differing bucket holds a few rows; only
those rows are fetched from both sides (action_rows.sql) and compared column by column.
The table is never pulled: each level reads the region on each engine and returns one
row per bucket.

    found = drill_down(source_conn, target_conn, window, users=[42], days=["2025-03-10"])
    found.rows          # [RowDifference(id=..., kind="changed", column="query", ...)]

The region is the rows the failed checks point at (their users, their days) before the
window's end; with neither, the scope's rows. In scope "users" it never leaves the listed
users (a day named by a check is that day's rows of those users); a list longer than
`users_per_statement` is narrowed chunk by chunk, each query carrying one chunk. Capped
in rows (`max_rows`) and time (`max_seconds`): `capped` then says which cap stopped it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tracking_sync.core.errors import ParityCheckError
from tracking_sync.core.sql import SQL_DIR
from tracking_sync.validate.dialect import engine_dialect
from tracking_sync.validate.parity import (
    USERS,
    USERS_PER_STATEMENT,
    quote_identifier,
    timestamp_literal,
    user_list,
)
from tracking_sync.validate.row_differences import RowDifference, compare_rows
from tracking_sync.validate.streams import CheckWindow

DRILLDOWN_SQL_DIR = SQL_DIR / "drilldown"
MAX_ROWS = 1000  # differing rows kept (the XCom holds them all, the report the first few)
MAX_SECONDS = 60.0
LEVELS = (1 << 20, 1 << 15, 1 << 10, 1 << 5)  # bucket sizes, in ids
LEAF_ROWS = 64  # a differing bucket with at most this many rows on each side is fetched
MAX_BUCKETS = 2000  # differing buckets narrowed at one level; more: the first ones, capped
RANGES_PER_QUERY = 200


# the row's columns, in action_rows.sql's order after id; compared as these names say
@dataclass
class DrillDown:
    region: str  # which rows were looked at, as people read it
    rows: list[RowDifference] = field(default_factory=list)
    capped: str | None = None  # why it stopped before naming every row, or None
    queries: int = 0  # bucket and row queries, each run on both engines
    seconds: float = 0.0

    @property
    def row_ids(self) -> list[int]:
        return sorted({row.id for row in self.rows})


def render_drilldown(name: str, **params: Any) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(DRILLDOWN_SQL_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    params.setdefault("scope_users", None)  # only scope "users" confines the region to a list
    return env.get_template(name).render(**params).strip().rstrip(";")


def drill_down(
    source_conn: Any,
    target_conn: Any,
    window: CheckWindow,
    *,
    users: Iterable[Any] = (),
    days: Iterable[str] = (),
    max_rows: int = MAX_ROWS,
    max_seconds: float = MAX_SECONDS,
    users_per_statement: int = USERS_PER_STATEMENT,
) -> DrillDown:
    """Narrow the region's differences down to rows (see the module docstring)."""
    started = time.perf_counter()
    users = sorted({int(user) for user in users})
    day_list = sorted({date.fromisoformat(str(day)[:10]) for day in days})
    listed = window.users if window.scope == USERS else None
    if listed is not None:
        users = sorted(set(users) & set(listed))  # the checks only name listed users
    found = DrillDown(region=_describe_region(users, day_list, window.scope, listed))
    dialects = _both(engine_dialect, source_conn, target_conn)
    base = {
        "window_start": timestamp_literal(window.window_start),
        "window_end": timestamp_literal(window.window_end),
        "scope": window.scope,
        "users": users,
        "days": [
            (timestamp_literal(_midnight(day)), timestamp_literal(_midnight(day + timedelta(days=1))))
            for day in day_list
        ],
    }
    schemas = (quote_identifier(window.source_schema), quote_identifier(window.target_schema))

    def out_of_time() -> bool:
        if time.perf_counter() - started > max_seconds:
            found.capped = f"time: stopped after {max_seconds:.0f} s"
            return True
        return False

    def run(
        scope_users: str | None, name: str, ranges: Sequence[tuple[int, int]], **extra: Any
    ) -> tuple[list[tuple], list[tuple]]:
        found.queries += 1
        sqls = [
            render_drilldown(
                name, schema=schema, dialect=dialect, ranges=ranges, scope_users=scope_users, **base, **extra
            )
            for schema, dialect in zip(schemas, dialects, strict=True)
        ]
        return _both_queries(source_conn, target_conn, *sqls)

    for scope_users in _scope_user_chunks(listed, users, day_list, users_per_statement):
        if len(found.rows) >= max_rows or out_of_time():
            break
        _narrow(found, functools.partial(run, scope_users), out_of_time, max_rows)
    if len(found.rows) > max_rows:
        found.rows = found.rows[:max_rows]
        found.capped = found.capped or f"rows: the first {max_rows} differing rows"
    elif len(found.rows) == max_rows and not found.capped:
        found.capped = f"rows: the first {max_rows} differing rows"
    found.seconds = round(time.perf_counter() - started, 3)
    return found


def _scope_user_chunks(
    listed: Sequence[int] | None, users: Sequence[int], days: Sequence[date], per_statement: int
) -> list[str | None]:
    """The listed users of scope "users" as the SQL lists the region is confined to, one
    per pass of the narrowing; [None] when nothing confines it (other scopes, or named
    users and no day: those users, all listed, are the region)."""
    if listed is None or (users and not days):
        return [None]
    if not 1 <= per_statement <= USERS_PER_STATEMENT:
        raise ValueError(f"users_per_statement must be from 1 to {USERS_PER_STATEMENT}")
    return [user_list(listed[i : i + per_statement]) for i in range(0, len(listed), per_statement)] or [
        user_list(())
    ]


def _narrow(found: DrillDown, run: Any, out_of_time: Any, max_rows: int) -> None:
    """The bucket levels over one region, then its differing rows, added to `found`."""
    pending: list[tuple[int, int]] = []  # id ranges still to narrow; [] at the first level = all
    leaves: list[tuple[int, int]] = []
    for level, size in enumerate(LEVELS):
        if out_of_time():
            break
        buckets: dict[int, list[Any]] = {}
        for chunk in _chunks(pending, RANGES_PER_QUERY) if level else [[]]:
            source_rows, target_rows = run("action_buckets.sql", chunk, bucket_size=size)
            for side, rows in ((0, source_rows), (1, target_rows)):
                for bucket, count, checksum in rows:
                    buckets.setdefault(int(bucket), [(0, 0), (0, 0)])[side] = (int(count), int(checksum or 0))
            if out_of_time():
                break
        differing = sorted(bucket for bucket, (s, t) in buckets.items() if s != t)
        if len(differing) > MAX_BUCKETS:
            found.capped = (
                f"buckets: {len(differing)} differing buckets of {size} ids, the first {MAX_BUCKETS} narrowed"
            )
            differing = differing[:MAX_BUCKETS]
        small = [b for b in differing if max(buckets[b][0][0], buckets[b][1][0]) <= LEAF_ROWS]
        leaves += _merge([(b * size, (b + 1) * size) for b in small])
        last = level == len(LEVELS) - 1
        rest = differing if last else [b for b in differing if b not in set(small)]
        if last:
            leaves += _merge([(b * size, (b + 1) * size) for b in rest if b not in set(small)])
            break
        pending = _merge([(b * size, (b + 1) * size) for b in rest])
        if not pending:
            break
    for chunk in _chunks(_merge(leaves), RANGES_PER_QUERY):
        if len(found.rows) >= max_rows or out_of_time():
            break
        source_rows, target_rows = run("action_rows.sql", chunk)
        found.rows += compare_rows(source_rows, target_rows)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _describe_region(
    users: Sequence[int], days: Sequence[date], scope: str, listed: Sequence[int] | None = None
) -> str:
    parts = []
    if users:
        shown = ", ".join(str(user) for user in users[:10])
        parts.append(f"user_profile_id {shown}{', ...' if len(users) > 10 else ''} ({len(users)} users)")
    if days:
        parts.append(
            f"days {', '.join(day.isoformat() for day in days[:10])}{', ...' if len(days) > 10 else ''}"
        )
    if listed is not None:
        of_listed = f"the {len(listed)} listed users"
        if not parts:
            return f"{of_listed}, whole history"
        return " or ".join(parts) + ("" if users and not days else f", of {of_listed}")
    if not parts:
        return "the interval's users, whole history" if scope == "scoped" else "every row"
    return " or ".join(parts)


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _both(fn: Any, source_conn: Any, target_conn: Any) -> tuple[Any, Any]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        source = pool.submit(fn, source_conn)
        target = pool.submit(fn, target_conn)
        return source.result(), target.result()


def _fetch(conn: Any, sql: str) -> list[tuple]:
    cursor = conn.cursor()
    try:
        cursor.execute("set timezone to 'UTC'")
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    except Exception as error:
        raise ParityCheckError(f"row drill-down query failed: {error}\n{sql}") from error
    finally:
        try:
            cursor.close()
        finally:
            conn.rollback()


def _both_queries(source_conn: Any, target_conn: Any, sql_source: str, sql_target: str):
    with ThreadPoolExecutor(max_workers=2) as pool:
        source = pool.submit(_fetch, source_conn, sql_source)
        target = pool.submit(_fetch, target_conn, sql_target)
        return source.result(), target.result()
