"""The comparison of one parity check: two key-ordered row streams, merged by key.

Pure: rows in, a `CheckResult` out, no I/O. Memory stays flat however many keys there
are: only the `top` largest differences, a few sample keys and the differing days are
kept.

    pairs = merge_by_key(check, source_rows, target_rows)   # (key, source values, target values)
    result = compare_pairs(check, pairs)                    # counted, the largest kept

`compare_sorted` is the two in one call. Each row is the check's key columns, then its
value columns, in the order its header declares (see tracking_sync.validate.parity).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tracking_sync.core.errors import ParityCheckError
from tracking_sync.validate.parity import ParityCheck

TOP_DIFFERENCES = 10
SAMPLE_KEYS = 10
DIFFERING_KEYS = 1000  # keys of differing or missing rows kept for the row drill-down

# (key, source values, target values); None for the side that lacks the key
Pair = tuple[tuple, tuple | None, tuple | None]


@dataclass
class Difference:
    key: list[Any]
    column: str
    source: Any
    target: Any
    delta: float | int | None  # target - source; None when one side is NULL


@dataclass
class CheckResult:
    name: str
    keys: list[str]
    source_rows: int = 0
    target_rows: int = 0
    matching: int = 0
    differing: int = 0
    missing_in_target: int = 0
    missing_in_source: int = 0
    top_differences: list[Difference] = field(default_factory=list)
    missing_in_target_sample: list[list[Any]] = field(default_factory=list)
    missing_in_source_sample: list[list[Any]] = field(default_factory=list)
    days: list[str] = field(default_factory=list)  # differing or missing days (day-keyed checks)
    # differing values where the source has a fraction and the target a whole number
    whole_target_fraction_source: int = 0
    # every differing or missing key, up to DIFFERING_KEYS (the row drill-down's region)
    differing_keys: list[list[Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not (self.differing or self.missing_in_target or self.missing_in_source)


def format_key(key: Sequence[Any]) -> str:
    """A key as people read it: its columns' values, comma-separated."""
    return ", ".join(str(part) for part in key)


def merge_by_key(
    check: ParityCheck, source_rows: Iterable[tuple], target_rows: Iterable[tuple]
) -> Iterator[Pair]:
    """Pair the two sides' rows by key, in key order; refuse a side whose keys do not ascend."""
    width = len(check.keys)
    source = _ordered(source_rows, width, "source", check)
    target = _ordered(target_rows, width, "target", check)
    s = next(source, None)
    t = next(target, None)
    while s is not None or t is not None:
        if t is None or (s is not None and s[0] < t[0]):
            yield s[0], s[1], None
            s = next(source, None)
        elif s is None or t[0] < s[0]:
            yield t[0], None, t[1]
            t = next(target, None)
        else:
            yield s[0], s[1], t[1]
            s = next(source, None)
            t = next(target, None)


def compare_pairs(
    check: ParityCheck, pairs: Iterable[Pair], top: int = TOP_DIFFERENCES, sample: int = SAMPLE_KEYS
) -> CheckResult:
    """Count what matches, differs and is missing; keep only what the report shows."""
    result = CheckResult(name=check.name, keys=list(check.keys))
    day_index = check.keys.index(check.day_key) if check.day_key else None
    largest: list[tuple[float, int, Difference]] = []  # min-heap of the `top` largest deltas
    order = itertools.count()
    days: set[str] = set()
    for key, source_values, target_values in pairs:
        if target_values is None:
            result.source_rows += 1
            result.missing_in_target += 1
            if len(result.missing_in_target_sample) < sample:
                result.missing_in_target_sample.append(list(key))
        elif source_values is None:
            result.target_rows += 1
            result.missing_in_source += 1
            if len(result.missing_in_source_sample) < sample:
                result.missing_in_source_sample.append(list(key))
        else:
            result.source_rows += 1
            result.target_rows += 1
            row_differs = False
            for size, difference in _differences(check, key, source_values, target_values):
                row_differs = True
                if _whole_for_fraction(difference):
                    result.whole_target_fraction_source += 1
                item = (size, next(order), difference)
                if len(largest) < top:
                    heapq.heappush(largest, item)
                elif size > largest[0][0]:
                    heapq.heapreplace(largest, item)
            if not row_differs:
                result.matching += 1
                continue
            result.differing += 1
        if len(result.differing_keys) < DIFFERING_KEYS:
            result.differing_keys.append(list(key))
        if day_index is not None:
            days.add(str(key[day_index]))
    result.top_differences = [item[2] for item in sorted(largest, key=lambda i: (-i[0], i[1]))]
    result.days = sorted(days)
    return result


def compare_sorted(
    check: ParityCheck,
    source_rows: Iterable[tuple],
    target_rows: Iterable[tuple],
    top: int = TOP_DIFFERENCES,
    sample: int = SAMPLE_KEYS,
) -> CheckResult:
    """Merge two key-ordered row streams and compare them (merge_by_key, then compare_pairs)."""
    return compare_pairs(check, merge_by_key(check, source_rows, target_rows), top=top, sample=sample)


def _ordered(rows: Iterable[tuple], width: int, side: str, check: ParityCheck) -> Iterator[tuple]:
    """Yield (key, values) and insist the keys ascend: the merge depends on it."""
    previous = None
    for row in rows:
        key = tuple(row[:width])
        if previous is not None and not key > previous:
            raise ParityCheckError(
                f"{check.path.name}: {side} rows are not in ascending order of "
                f"{', '.join(check.keys)} ({format_key(previous)} then "
                f"{format_key(key)}): the query must `order by` its key columns, and "
                "text keys must sort the same on both engines (prefer integers and dates)"
            )
        previous = key
        yield key, row[width:]


def _differences(
    check: ParityCheck, key: tuple, source_values: tuple, target_values: tuple
) -> Iterator[tuple[float, Difference]]:
    """The values of one key that differ by more than their tolerance, each with its size
    (infinite when one side is NULL: those rank first)."""
    for spec, source_value, target_value in zip(check.values, source_values, target_values, strict=True):
        a, b = _number(source_value), _number(target_value)
        if a is None or b is None:
            if source_value == target_value:
                continue
            yield math.inf, Difference(list(key), spec.name, source_value, target_value, None)
            continue
        exact = isinstance(source_value, int) and isinstance(target_value, int)
        delta = target_value - source_value if exact else b - a
        if abs(delta) <= spec.tolerance:
            continue
        yield abs(delta), Difference(list(key), spec.name, source_value, target_value, delta)


def _whole_for_fraction(difference: Difference) -> bool:
    """The source has a fraction and the target a whole number: the TIMESTAMP trap's mark."""
    a, b = _number(difference.source), _number(difference.target)
    return a is not None and b is not None and _has_fraction(a) and not _has_fraction(b)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    return None


def _has_fraction(value: float) -> bool:
    return not math.isclose(value, round(value), abs_tol=1e-9)
