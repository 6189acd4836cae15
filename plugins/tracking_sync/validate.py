"""Validation as query parity: run every parity check on PostgreSQL and on Redshift, compare.

Each check (include/sql/parity/*.sql, see tracking_sync.parity) is rendered with the
run's window, run inside each database, and the two results are compared as sorted
streams by key: memory stays flat however many keys there are (only the top-N
differences, a few samples and the differing days are kept). The verdict is a
`ValidationReport`: JSON-serialisable for XCom, readable as a table in the log, with
the command that repairs what it found.

    report = run_validation(source_conn, target_conn, target_schema="tracking",
                            window_start=..., window_end=..., scope="scoped")
    print(report.format_table())

`run_validation` takes DB-API connections (psycopg 2/3, redshift_connector) and runs
without Airflow; `validate_task` is the thin Airflow wrapper the DAG's `validate` task
calls.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tracking_sync.exceptions import ParityCheckError
from tracking_sync.parity import SCOPES, ParityCheck, load_checks, quote_identifier

log = logging.getLogger(__name__)

DAG_ID = "postgres_to_redshift"
SOURCE_SCHEMA = "public"
REPORT_XCOM_KEY = "validation_report"
FETCH_ROWS = 1000  # Redshift caps FETCH FORWARD at 1000 rows on single-node clusters (r_FETCH)
TOP_DIFFERENCES = 10
SAMPLE_KEYS = 10
TIMESTAMP_HINT = (
    "action_time must be TIMESTAMPTZ on Redshift: EXTRACT(EPOCH FROM timestamp) is an "
    "integer there, so session durations lose their fractions"
)


# ---------------------------------------------------------------- results


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
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not (self.differing or self.missing_in_target or self.missing_in_source)


@dataclass
class ValidationReport:
    dag_id: str
    run_id: str | None
    window_start: str
    window_end: str
    scope: str
    source: str
    target: str
    checks: list[CheckResult]
    days_to_backfill: list[str] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    repair: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        for check, result in zip(data["checks"], self.checks, strict=True):
            check["passed"] = result.passed
        return _jsonable(data)

    def summary(self) -> str:
        """One line: the verdict and, on failure, what differs."""
        if self.passed:
            return (
                f"parity OK: {len(self.checks)} checks agree ({self.scope}, "
                f"{self.window_start} -> {self.window_end})"
            )
        parts = []
        for check in self.failed_checks:
            what = []
            if check.differing:
                what.append(f"{check.differing} {check.keys[0]} differ")
            if check.missing_in_target:
                what.append(f"{check.missing_in_target} missing in target")
            if check.missing_in_source:
                what.append(f"{check.missing_in_source} missing in source")
            parts.append(f"{check.name}: {', '.join(what)}")
        days = f"; days: {_format_days(self.days_to_backfill)}" if self.days_to_backfill else ""
        hint = f"; {self.diagnosis[0]}" if self.diagnosis else ""
        return f"parity FAILED ({self.scope}): {'; '.join(parts)}{days}{hint}"

    def format_table(self) -> str:
        """The report as on-call reads it in the task log."""
        lines = [
            f"Validation {'PASSED' if self.passed else 'FAILED'}: {self.dag_id} run {self.run_id}",
            f"  window  {self.window_start} -> {self.window_end}   scope {self.scope}",
            f"  source  {self.source}",
            f"  target  {self.target}",
            "",
        ]
        lines += _table(
            [
                "check",
                "source rows",
                "target rows",
                "differ",
                "missing in target",
                "missing in source",
                "verdict",
            ],
            [
                [
                    c.name,
                    c.source_rows,
                    c.target_rows,
                    c.differing,
                    c.missing_in_target,
                    c.missing_in_source,
                    "ok" if c.passed else "FAILED",
                ]
                for c in self.checks
            ],
        )
        for check in self.failed_checks:
            if check.top_differences:
                lines += ["", f"{check.name}: largest differences"]
                lines += _table(
                    [", ".join(check.keys), "column", "source", "target", "delta"],
                    [
                        [
                            _format_key(d.key),
                            d.column,
                            _format_value(d.source),
                            _format_value(d.target),
                            _format_value(d.delta),
                        ]
                        for d in check.top_differences
                    ],
                )
            if check.missing_in_target:
                lines.append(
                    f"{check.name}: {check.missing_in_target} {', '.join(check.keys)} missing in "
                    f"target, e.g. {', '.join(_format_key(k) for k in check.missing_in_target_sample)}"
                )
            if check.missing_in_source:
                lines.append(
                    f"{check.name}: {check.missing_in_source} {', '.join(check.keys)} missing in "
                    f"source (extra in target), e.g. "
                    f"{', '.join(_format_key(k) for k in check.missing_in_source_sample)}"
                )
        if self.days_to_backfill:
            lines += ["", f"days that differ: {_format_days(self.days_to_backfill)}"]
        if self.diagnosis:
            lines += ["", "diagnosis:"] + [f"  - {hint}" for hint in self.diagnosis]
        if self.repair:
            lines += ["", "repair:"] + [f"  {step}" for step in self.repair]
        lines.append(f"({self.seconds:.2f} s)")
        return "\n".join(lines)


# ---------------------------------------------------------------- streaming


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


# ---------------------------------------------------------------- comparison


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


def _ordered(rows: Iterator[tuple], width: int, side: str, check: ParityCheck) -> Iterator[tuple]:
    """Yield (key, values) and insist the keys ascend: the merge depends on it."""
    previous = None
    for row in rows:
        key = tuple(row[:width])
        if previous is not None and not key > previous:
            raise ParityCheckError(
                f"{check.path.name}: {side} rows are not in ascending order of "
                f"{', '.join(check.keys)} ({_format_key(list(previous))} then "
                f"{_format_key(list(key))}): the query must `order by` its key columns, and "
                "text keys must sort the same on both engines (prefer integers and dates)"
            )
        previous = key
        yield key, row[width:]


def compare_sorted(
    check: ParityCheck,
    source_rows: Iterator[tuple],
    target_rows: Iterator[tuple],
    top: int = TOP_DIFFERENCES,
    sample: int = SAMPLE_KEYS,
    on_pair: Callable[[tuple, tuple | None, tuple | None], None] | None = None,
) -> CheckResult:
    """Merge two key-ordered row streams; count and keep only what the report shows.

    `on_pair(key, source_values, target_values)` sees every key in order (None for the
    side that lacks it): how `make demo` prints rows without a second query.
    """
    result = CheckResult(name=check.name, keys=list(check.keys))
    width = len(check.keys)
    day_index = check.keys.index(check.day_key) if check.day_key else None
    largest: list[tuple[float, int, Difference]] = []  # min-heap of the `top` largest deltas
    order = itertools.count()
    days: set[str] = set()
    source = _ordered(source_rows, width, "source", check)
    target = _ordered(target_rows, width, "target", check)
    s = next(source, None)
    t = next(target, None)
    while s is not None or t is not None:
        if t is None or (s is not None and s[0] < t[0]):
            if on_pair is not None:
                on_pair(s[0], s[1], None)
            result.source_rows += 1
            result.missing_in_target += 1
            if len(result.missing_in_target_sample) < sample:
                result.missing_in_target_sample.append(list(s[0]))
            if day_index is not None:
                days.add(str(s[0][day_index]))
            s = next(source, None)
            continue
        if s is None or t[0] < s[0]:
            if on_pair is not None:
                on_pair(t[0], None, t[1])
            result.target_rows += 1
            result.missing_in_source += 1
            if len(result.missing_in_source_sample) < sample:
                result.missing_in_source_sample.append(list(t[0]))
            if day_index is not None:
                days.add(str(t[0][day_index]))
            t = next(target, None)
            continue
        if on_pair is not None:
            on_pair(s[0], s[1], t[1])
        result.source_rows += 1
        result.target_rows += 1
        row_differs = False
        for spec, source_value, target_value in zip(check.values, s[1], t[1], strict=True):
            a, b = _number(source_value), _number(target_value)
            if a is None or b is None:
                same = source_value == target_value
                delta = None
                size = math.inf
            else:
                exact = isinstance(source_value, int) and isinstance(target_value, int)
                delta = target_value - source_value if exact else b - a
                size = abs(delta)
                same = size <= spec.tolerance
            if same:
                continue
            row_differs = True
            if a is not None and b is not None and _has_fraction(a) and not _has_fraction(b):
                result.whole_target_fraction_source += 1
            difference = Difference(list(s[0]), spec.name, source_value, target_value, delta)
            item = (size, next(order), difference)
            if len(largest) < top:
                heapq.heappush(largest, item)
            elif size > largest[0][0]:
                heapq.heapreplace(largest, item)
        if row_differs:
            result.differing += 1
            if day_index is not None:
                days.add(str(s[0][day_index]))
        else:
            result.matching += 1
        s = next(source, None)
        t = next(target, None)
    result.top_differences = [item[2] for item in sorted(largest, key=lambda i: (-i[0], i[1]))]
    result.days = sorted(days)
    return result


def run_check(
    check: ParityCheck,
    source_conn: Any,
    target_conn: Any,
    *,
    source_schema: str,
    target_schema: str,
    window_start: datetime,
    window_end: datetime,
    scope: str,
    top: int = TOP_DIFFERENCES,
    on_pair: Callable[[tuple, tuple | None, tuple | None], None] | None = None,
) -> CheckResult:
    window = {"window_start": window_start, "window_end": window_end, "scope": scope}
    sql_source = check.render(schema=source_schema, **window)
    sql_target = check.render(schema=target_schema, **window)
    started = time.perf_counter()
    source_columns, source_batches, target_columns, target_batches = _open_both(
        source_conn, target_conn, sql_source, sql_target
    )
    for side, columns in (("source", source_columns), ("target", target_columns)):
        if tuple(name.lower() for name in columns) != check.columns:
            raise ParityCheckError(
                f"{check.path.name} returned columns {list(columns)} on the {side}; its header "
                f"declares {list(check.columns)} (keys first, then values, in that order)"
            )
    result = compare_sorted(check, _rows(source_batches), _rows(target_batches), top=top, on_pair=on_pair)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


# ---------------------------------------------------------------- the report


def target_column_type(target_conn: Any, schema: str, table: str, column: str) -> str | None:
    """The declared type of a target column (information_schema exists on both engines)."""
    for name in (schema, table, column):
        quote_identifier(name)
    cursor = target_conn.cursor()
    try:
        cursor.execute(
            "select data_type from information_schema.columns "
            f"where table_schema = '{schema}' and table_name = '{table}' "
            f"and column_name = '{column}'"
        )
        row = cursor.fetchone()
        return None if row is None else str(row[0]).lower()
    finally:
        cursor.close()
        target_conn.rollback()


def _day_ranges(days: Sequence[str]) -> list[tuple[str, str]]:
    ranges: list[list[date]] = []
    for day in sorted(date.fromisoformat(d) for d in days):
        if ranges and day - ranges[-1][1] == timedelta(days=1):
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return [(first.isoformat(), last.isoformat()) for first, last in ranges]


def _format_days(days: Sequence[str]) -> str:
    return ", ".join(first if first == last else f"{first}..{last}" for first, last in _day_ranges(days))


def repair_steps(
    days: Sequence[str], *, dag_id: str = DAG_ID, wrong_type: bool = False, scope: str = "full"
) -> list[str]:
    """What to run to make the target right again, for the report."""
    full_refresh_cli = f'airflow dags trigger {dag_id} --conf \'{{"mode": "full_refresh"}}\''
    full_refresh_ui = f"UI: {dag_id} > Trigger > mode = full_refresh"
    if wrong_type:
        return [
            "Fix the target DDL first (a reload into the same TIMESTAMP column fails again): "
            "drop the target tables (or alter action_time to TIMESTAMPTZ), let create_schema "
            "recreate them from include/sql/redshift, then reload everything:",
            f"CLI: {full_refresh_cli}",
            full_refresh_ui,
        ]
    if not days and scope == "scoped":
        # A scoped run counts days only inside its interval: an old row of one of the
        # interval's users differs. A full validation names its day.
        return [
            "Users differ outside this interval's days: find the days with a full validation "
            "(its per-day check names them), then backfill those days:",
            f'CLI: airflow dags trigger {dag_id} --conf \'{{"validation": "full"}}\'',
            f"UI: {dag_id} > Trigger > validation = full",
            f"or reload everything: {full_refresh_cli}",
        ]
    if not days:
        return [
            "No day is singled out: reload everything with a full refresh.",
            f"CLI: {full_refresh_cli}",
            full_refresh_ui,
        ]
    ranges = _day_ranges(days)
    if len(ranges) > 5:  # one backfill over the span beats a page of commands
        ranges = [(ranges[0][0], ranges[-1][1])]
    steps = ["Reload the differing days (each day is one daily interval; reruns are idempotent):"]
    steps += [
        f"CLI: airflow backfill create --dag-id {dag_id} --from-date {first} --to-date {last} "
        "--reprocess-behavior completed --max-active-runs 1"
        for first, last in ranges
    ]
    steps.append(
        f"UI: {dag_id} > Trigger > Backfill, Date Range "
        + ", ".join(f"{first} to {last}" for first, last in ranges)
        + ", Reprocess Behaviour 'All Runs', Max Active Runs 1"
    )
    steps.append(f"or a full refresh: {full_refresh_cli}")
    return steps


def run_validation(
    source_conn: Any,
    target_conn: Any,
    *,
    target_schema: str,
    window_start: datetime,
    window_end: datetime,
    scope: str = "scoped",
    source_schema: str = SOURCE_SCHEMA,
    checks: Sequence[ParityCheck] | None = None,
    dag_id: str = DAG_ID,
    run_id: str | None = None,
    source_name: str = "postgres_source",
    target_name: str = "redshift_default",
    top: int = TOP_DIFFERENCES,
) -> ValidationReport:
    """Run every parity check on both engines and build the report (never raises on a mismatch)."""
    if scope not in SCOPES:
        raise ParityCheckError(f"validation scope {scope!r} is not one of {list(SCOPES)}")
    started = time.perf_counter()
    checks = load_checks() if checks is None else list(checks)
    results = [
        run_check(
            check,
            source_conn,
            target_conn,
            source_schema=source_schema,
            target_schema=target_schema,
            window_start=window_start,
            window_end=window_end,
            scope=scope,
            top=top,
        )
        for check in checks
    ]
    report = ValidationReport(
        dag_id=dag_id,
        run_id=run_id,
        window_start=window_start.isoformat(),
        window_end=window_end.isoformat(),
        scope=scope,
        source=f"{source_name} (PostgreSQL) schema {source_schema}",
        target=f"{target_name} (Redshift) schema {target_schema}",
        checks=results,
    )
    if not report.passed:
        report.days_to_backfill = sorted({day for result in results for day in result.days})
        wrong_type = _diagnose(report, target_conn, target_schema)
        report.repair = repair_steps(
            report.days_to_backfill, dag_id=dag_id, wrong_type=wrong_type, scope=scope
        )
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _diagnose(report: ValidationReport, target_conn: Any, target_schema: str) -> bool:
    """Name the cause when it can be named; True when it is the TIMESTAMP column type."""
    action_time_type = target_column_type(target_conn, target_schema, "action", "action_time")
    whole = sum(check.whole_target_fraction_source for check in report.checks)
    wrong_type = action_time_type in ("timestamp", "timestamp without time zone")
    if wrong_type:
        report.diagnosis.append(f"{TIMESTAMP_HINT} (the target's action_time is {action_time_type!r})")
    elif whole:
        report.diagnosis.append(
            f"{whole} differing values are whole numbers on the target where the source has "
            f"fractions: {TIMESTAMP_HINT}"
        )
    return wrong_type


# ---------------------------------------------------------------- formatting


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _format_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (float, Decimal)):
        return f"{float(value):.6f}"
    return str(value)


def _format_key(key: Sequence[Any]) -> str:
    return ", ".join(str(part) for part in key)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(header)]

    def line(row: Sequence[str]) -> str:
        return " | ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    return [line(header), "-+-".join("-" * width for width in widths)] + [line(row) for row in cells]


# ---------------------------------------------------------------- make demo

REFERENCE_CHECK = "per_user_session_totals"


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
    """The reference query on both engines, side by side, in the shape people know:

        user_profile_id | total_time_spent | session_avg_duration   (PostgreSQL, then Redshift)

    the first and last rows, "(N rows)" for each engine and the verdict of comparing
    every row (everything before window_end). Both results stream: only the printed
    rows are kept.
    """
    check = next(c for c in load_checks() if c.name == REFERENCE_CHECK)
    head: list[list[str]] = []
    tail: deque[list[str]] = deque(maxlen=last)

    def keep(key: tuple, source: tuple | None, target: tuple | None) -> None:
        line = []
        for values in (source, target):
            line += ["", "", ""] if values is None else [str(key[0])] + [_format_value(v) for v in values]
        (head if len(head) < first else tail).append(line)

    result = run_check(
        check,
        source_conn,
        target_conn,
        source_schema=source_schema,
        target_schema=target_schema,
        window_start=window_end,
        window_end=window_end,
        scope="full",
        on_pair=keep,
    )
    columns = ["user_profile_id", "total_time_spent", "session_avg_duration"]
    gap = [["..."] * 6] if len(tail) else []
    table = _table(columns + columns, head + gap + list(tail))
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


# ---------------------------------------------------------------- the Airflow task


def validation_scope(run_params: Any) -> str:
    """`full` when asked for, and after a full refresh (it reloaded everything);
    `scoped` otherwise: the users active in the interval, each with their whole history
    before its end, so the cost grows with the interval's users, not the table."""
    return "full" if run_params.validation == "full" or run_params.is_full_refresh else "scoped"


def validation_window(context: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """The run's [start, end) for the checks: its data interval.

    A manual run triggered without a logical date has no data interval (only a full
    refresh gets as far as validate, see params.RunSlice): it is checked up to the moment
    it was triggered, which is fixed for the run (not the clock).
    """
    end = context.get("data_interval_end") or context["dag_run"].run_after
    return context.get("data_interval_start") or end, end


def validate_task(**context: Any) -> None:
    """The `validate` task: run the parity checks for this run's interval.

    Pushes the report to XCom (key `validation_report`) and logs it as a table. A data
    mismatch raises AirflowFailException, which fails the task without retrying (a
    retry would find the same data); connection errors and the like raise as they are
    and are retried.
    """
    from contextlib import closing

    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk.exceptions import AirflowFailException

    from tracking_sync.config import REDSHIFT_CONN_ID, SOURCE_CONN_ID
    from tracking_sync.params import validate_params

    run_params = validate_params(context["params"])
    ti = context["ti"]
    window_start, window_end = validation_window(context)
    source_hook = PostgresHook(postgres_conn_id=SOURCE_CONN_ID)
    target_hook = RedshiftSQLHook(redshift_conn_id=REDSHIFT_CONN_ID)
    try:
        with closing(source_hook.get_conn()) as source_conn, closing(target_hook.get_conn()) as target_conn:
            report = run_validation(
                source_conn,
                target_conn,
                target_schema=run_params.target_schema,
                window_start=window_start,
                window_end=window_end,
                scope=validation_scope(run_params),
                dag_id=ti.dag_id,
                run_id=ti.run_id,
                source_name=SOURCE_CONN_ID,
                target_name=REDSHIFT_CONN_ID,
            )
    except ParityCheckError as error:  # a broken check file: retrying will not mend it
        raise AirflowFailException(str(error)) from error
    ti.xcom_push(key=REPORT_XCOM_KEY, value=report.to_dict())
    log.info("%s\n%s", report.summary(), report.format_table())
    if not report.passed:
        raise AirflowFailException(
            f"{report.summary()} -- full report: the task log above and XCom "
            f"'{REPORT_XCOM_KEY}' of task {ti.task_id}, run {ti.run_id}"
        )
