"""Rows that moved out of a rerun's interval in the source: carried to their new place.

A rerun of an interval deletes the target's rows of the interval; rows the source no longer
holds there are looked up in the source by id, and those that moved to another interval (a
late correction of action_time) are carried there in the same publish transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tracking_sync.core.errors import TooManyMovedRows
from tracking_sync.core.sql import render_sql
from tracking_sync.core.tables import ACTION

log = logging.getLogger(__name__)

# A rerun carries rows that moved out of its interval one INSERT at a time into staging:
# fine for late corrections, not for a bulk rewrite of action_time (then rerun the days
# the rows moved to first, or a full refresh).
MAX_CARRIED_ROWS = 10_000
CARRY_BATCH_ROWS = 500


def carry_moved_rows(
    cursor: Any,
    schema: str,
    staging: str,
    bounds: dict[str, datetime],
    read_source_rows: Callable[[list[int]], list[tuple]],
) -> tuple[list[int], list[int]]:
    """Carry the rows that left the interval in the source; (carried ids, ids deleted in the source)."""
    cursor.execute(
        render_sql("redshift/select_departed_action_ids.sql", schema=schema, staging=staging), bounds
    )
    departed = [row[0] for row in cursor.fetchall()]
    if not departed:
        return [], []
    moved = read_source_rows(departed)
    moved_ids = {row[0] for row in moved}
    deleted_in_source = [i for i in departed if i not in moved_ids]
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
    carried = sorted(moved_ids)
    if moved:
        log.info(
            "carrying %s action rows that moved out of the interval to their new place (ids %s%s)",
            len(moved),
            ", ".join(str(i) for i in carried[:20]),
            ", ..." if len(moved) > 20 else "",
        )
    if deleted_in_source:
        log.info("%s action rows of the interval were deleted in the source", len(deleted_in_source))
    return carried, deleted_in_source


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
