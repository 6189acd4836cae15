"""The rows a publish placed outside its interval, compared by id on both engines.

A rerun carries rows that moved out of its interval to their new place and deletes the
old copies of rows that moved into it (tracking_sync.load.publish). Those ids are the only rows
outside the interval the run changed, so validate compares exactly them, column by
column: a row the rerun lost or misplaced fails the run, naming its id, while
differences in other intervals that a later run will reload (a backfill in progress)
are left to those runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from tracking_sync.core.sql import render_sql
from tracking_sync.core.tables import ACTION
from tracking_sync.validate.compare import TOP_DIFFERENCES, CheckResult, Difference
from tracking_sync.validate.parity import quote_identifier

CHECK_NAME = "rows_placed_outside_interval"
MAX_IDS = 10_000  # the publish carries at most this many rows (load.MAX_CARRIED_ROWS)


def compare_rows_by_id(
    source_conn: Any, target_conn: Any, target_schema: str, ids: Sequence[int], top: int = TOP_DIFFERENCES
) -> CheckResult:
    """Both engines' rows with these ids, as the export writes them, compared column by column."""
    started = time.perf_counter()
    ids = sorted({int(i) for i in ids})[:MAX_IDS]
    columns = [column.name for column in ACTION.file_columns]
    source = _by_id(
        _fetch(
            source_conn,
            render_sql(
                "postgres/select_actions_by_id.sql",
                columns=[column.select_expression for column in ACTION.file_columns],
            ),
            {"ids": ids},
        )
    )
    target = _by_id(
        _fetch(
            target_conn,
            render_sql(
                "redshift/select_actions_by_id.sql", schema=quote_identifier(target_schema), ids=ids or [0]
            ),
        )
    )
    result = CheckResult(name=CHECK_NAME, keys=["id"], source_rows=len(source), target_rows=len(target))
    days: set[str] = set()
    for row_id in ids:
        here, there = source.get(row_id), target.get(row_id)
        if here is None and there is None:
            continue  # deleted in the source, and gone from the target: as it should be
        if there is None:
            result.missing_in_target += 1
            result.missing_in_target_sample.append([row_id])
            days.add(_day(here[columns.index("action_time")]))
            continue
        if here is None:
            result.missing_in_source += 1
            result.missing_in_source_sample.append([row_id])
            days.add(_day(there[columns.index("action_time")]))
            continue
        differing = [(c, a, b) for c, a, b in zip(columns, here, there, strict=True) if a != b]
        if not differing:
            result.matching += 1
            continue
        result.differing += 1
        days.update({_day(here[columns.index("action_time")]), _day(there[columns.index("action_time")])})
        for column, a, b in differing:
            if len(result.top_differences) < top:
                result.top_differences.append(Difference([row_id], column, a, b, None))
    result.missing_in_target_sample = result.missing_in_target_sample[:top]
    result.missing_in_source_sample = result.missing_in_source_sample[:top]
    result.days = sorted(days)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _fetch(conn: Any, sql: str, params: Any = None) -> list[tuple]:
    cursor = conn.cursor()
    try:
        cursor.execute("set timezone to 'UTC'")
        cursor.execute(sql, params) if params is not None else cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()
        conn.rollback()


def _by_id(rows: list[tuple]) -> dict[int, tuple]:
    return {row[0]: row for row in rows}


def _day(moment: Any) -> str:
    return moment.date().isoformat() if hasattr(moment, "date") else str(moment)[:10]
