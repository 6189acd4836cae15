"""Rows of both engines compared column by column: what the drill-down reports of each row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_VALUE_CHARS = 500  # a longer value (a long `query`) is shown cut, with its length

COLUMNS = (
    "user_profile_id",
    "session_id",
    "action_type_id",
    "action_time",
    "course_id",
    "exercise_id",
    "is_exercise_checked",
    "is_async",
    "query",
)
MISSING_IN_TARGET = "missing in target"
EXTRA_IN_TARGET = "extra in target"
CHANGED = "changed"


@dataclass
class RowDifference:
    id: int
    kind: str  # missing in target | extra in target | changed
    column: str | None = None  # changed: the column; None for a whole row
    source: Any = None
    target: Any = None


def compare_rows(source_rows: Sequence[tuple], target_rows: Sequence[tuple]) -> list[RowDifference]:
    """Rows of both sides (action_rows.sql's columns), compared by id, column by column.
    An id on one side only is missing or extra; an id twice on one side (Redshift does not
    enforce keys) has its surplus copies reported as missing or extra."""
    by_id: dict[int, list[list[tuple]]] = {}
    for side, rows in ((0, source_rows), (1, target_rows)):
        for row in rows:
            by_id.setdefault(int(row[0]), [[], []])[side].append(row)
    differences: list[RowDifference] = []
    for row_id in sorted(by_id):
        source, target = by_id[row_id]
        for s, t in zip(source, target, strict=False):
            differences += _column_differences(row_id, s, t)
        for s in source[len(target) :]:
            differences.append(RowDifference(row_id, MISSING_IN_TARGET, None, _shown_row(s), None))
        for t in target[len(source) :]:
            differences.append(RowDifference(row_id, EXTRA_IN_TARGET, None, None, _shown_row(t)))
    return differences


def _column_differences(row_id: int, s: tuple, t: tuple) -> list[RowDifference]:
    found = []
    for name, source_value, target_value in zip(COLUMNS, _values(s), _values(t), strict=True):
        if name == "action_time":
            differs = s[4] != t[4]  # integer microseconds: a TIMESTAMP and a TIMESTAMPTZ compare
        else:
            differs = source_value != target_value
        if differs:
            found.append(RowDifference(row_id, CHANGED, name, _shown(source_value), _shown(target_value)))
    return found


def _values(row: tuple) -> tuple:
    # id, user_profile_id, session_id, action_type_id, action_time_us, action_time, ...
    return (row[1], row[2], row[3], _utc(row[5]), *row[6:])


def _shown_row(row: tuple) -> dict[str, Any]:
    return {name: _shown(value) for name, value in zip(COLUMNS, _values(row), strict=True)}


def _shown(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return f"{value[:MAX_VALUE_CHARS]}... ({len(value)} characters)"
    return value


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return value
