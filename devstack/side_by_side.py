"""`make demo`'s closing table: the reference parity check on both engines, side by side.

    user_profile_id | total_time_spent | session_avg_duration   (PostgreSQL, then Redshift)

It runs the pipeline's own check, streams and comparison, and looks at the key pairs as
they go by: only the printed rows are kept, whatever the number of users.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from tracking_sync.validate.compare import Pair, compare_pairs, merge_by_key
from tracking_sync.validate.diagnosis import TIMESTAMP_HINT
from tracking_sync.validate.parity import load_checks
from tracking_sync.validate.run import SOURCE_SCHEMA
from tracking_sync.validate.streams import CheckWindow, stream_check
from tracking_sync.validate.text import format_value, text_table

REFERENCE_CHECK = "per_user_session_totals"
COLUMNS = ["user_profile_id", "total_time_spent", "session_avg_duration"]


def format_side_by_side(
    source_conn: Any,
    target_conn: Any,
    *,
    target_schema: str,
    window_end: datetime,
    source_schema: str = SOURCE_SCHEMA,
    first: int = 5,
    last: int = 5,
) -> str:
    """The reference query on both engines, side by side, in the shape people know: the
    first and last rows, "(N rows)" for each engine and the verdict of comparing every
    row (everything before window_end)."""
    check = next(c for c in load_checks() if c.name == REFERENCE_CHECK)
    head: list[list[str]] = []
    tail: deque[list[str]] = deque(maxlen=last)

    def printed(pairs: Iterable[Pair]) -> Iterator[Pair]:
        for key, source, target in pairs:
            line = []
            for values in (source, target):
                line += ["", "", ""] if values is None else [str(key[0])] + [format_value(v) for v in values]
            (head if len(head) < first else tail).append(line)
            yield key, source, target

    everything = CheckWindow(source_schema, target_schema, window_end, window_end, scope="full")
    source_rows, target_rows = stream_check(check, source_conn, target_conn, everything)
    result = compare_pairs(check, printed(merge_by_key(check, source_rows, target_rows)))
    gap = [["..."] * 6] if len(tail) else []
    table = text_table(COLUMNS + COLUMNS, head + gap + list(tail))
    left = len(" | ".join(table[0].split(" | ")[:3]))
    lines = [
        "PostgreSQL (source)".ljust(left) + " | Redshift (target)",
        *table,
        f"({result.source_rows} rows)".ljust(left) + f" | ({result.target_rows} rows)",
        "",
    ]
    tolerance = max(value.tolerance for value in check.values)
    if result.passed:
        lines.append(
            f"verdict: the engines agree on all {result.source_rows} users "
            f"(within {tolerance} s), before {window_end.isoformat()}"
        )
    else:
        lines.append(
            f"verdict: MISMATCH: {result.differing} users differ, {result.missing_in_target} "
            f"missing in Redshift, {result.missing_in_source} only in Redshift"
        )
        if result.whole_target_fraction_source:
            lines.append(f"  {TIMESTAMP_HINT}")
    return "\n".join(lines)
