"""Plain text for reports and logs: values, days as ranges, tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any


def day_ranges(days: Sequence[str]) -> list[tuple[str, str]]:
    """ISO days as runs of consecutive days: [(first, last), ...], in order."""
    ranges: list[list[date]] = []
    for day in sorted(date.fromisoformat(d) for d in days):
        if ranges and day - ranges[-1][1] == timedelta(days=1):
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return [(first.isoformat(), last.isoformat()) for first, last in ranges]


def format_days(days: Sequence[str]) -> str:
    return ", ".join(first if first == last else f"{first}..{last}" for first, last in day_ranges(days))


def format_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (float, Decimal)):
        return f"{float(value):.6f}"
    return str(value)


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(header)]

    def line(row: Sequence[str]) -> str:
        return " | ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    return [line(header), "-+-".join("-" * width for width in widths)] + [line(row) for row in cells]
