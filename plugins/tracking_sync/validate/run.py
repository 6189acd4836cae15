"""Validation as query parity: run every parity check on PostgreSQL and on Redshift, compare.

Each check (include/sql/parity/*.sql, see tracking_sync.validate.parity) is rendered with the
run's window and run inside each database (tracking_sync.validate.streams); the two results are
compared as sorted streams by key (tracking_sync.validate.compare). The verdict is a
`ValidationReport` (tracking_sync.validate.report), with the cause and the repair when it fails
(tracking_sync.validate.diagnosis).

    report = run_validation(source_conn, target_conn, target_schema="tracking",
                            window_start=..., window_end=..., scope="scoped")
    print(report.format_table())

`run_validation` takes DB-API connections (psycopg 2/3, redshift_connector) and runs
without Airflow; `validate_for_run` is what the DAG's `validate` task (tracking_sync.tasks)
calls with the run plan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tracking_sync.core.errors import ParityCheckError
from tracking_sync.core.names import DAG_ID, REDSHIFT_CONN_ID, SOURCE_CONN_ID
from tracking_sync.core.plan import RunPlan
from tracking_sync.validate.compare import (
    DIFFERING_KEYS,
    TOP_DIFFERENCES,
    CheckResult,
    compare_sorted,
)
from tracking_sync.validate.diagnosis import TIMESTAMP_HINT, explain_failure
from tracking_sync.validate.drilldown import DrillDown, drill_down
from tracking_sync.validate.parity import SCOPES, ParityCheck, load_checks
from tracking_sync.validate.placed_rows import compare_rows_by_id
from tracking_sync.validate.report import ValidationReport
from tracking_sync.validate.shared_pass import shared_passes
from tracking_sync.validate.streams import CheckWindow, stream_check

log = logging.getLogger(__name__)

SOURCE_SCHEMA = "public"
MAX_DRILL_DAYS = 100  # more differing days: the drill-down reads the scope's rows instead


def run_check(
    check: ParityCheck,
    source_conn: Any,
    target_conn: Any,
    window: CheckWindow,
    top: int = TOP_DIFFERENCES,
    base_relation: str | None = None,
) -> CheckResult:
    """One check on both engines, compared; `seconds` is what it took."""
    started = time.perf_counter()
    source_rows, target_rows = stream_check(check, source_conn, target_conn, window, base_relation)
    result = compare_sorted(check, source_rows, target_rows, top=top)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


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
    source_name: str = SOURCE_CONN_ID,
    target_name: str = REDSHIFT_CONN_ID,
    top: int = TOP_DIFFERENCES,
    rerun_interval_start: datetime | None = None,
    extra_results: Sequence[CheckResult] = (),
    drill: bool = True,
) -> ValidationReport:
    """Run every parity check on both engines and build the report (never raises on a mismatch).

    Everything before `window_end` is compared; a scoped run picks the users and days of
    [window_start, window_end). `extra_results`
    (already compared, e.g. the rows a publish placed outside its interval) join the
    report. The repair of a scoped failure that names no day reruns the interval that
    starts at `rerun_interval_start` with a full validation. A failure is narrowed to the
    differing `action` rows (tracking_sync.validate.drilldown) unless `drill` is False."""
    if scope not in SCOPES:
        raise ParityCheckError(f"validation scope {scope!r} is not one of {list(SCOPES)}")
    started = time.perf_counter()
    checks = load_checks() if checks is None else list(checks)
    window = CheckWindow(source_schema, target_schema, window_start, window_end, scope)
    # The shared passes first (one scan of `action` per engine, both engines at once),
    # then each check on both engines at once, over those passes' small results.
    with shared_passes(checks, source_conn, target_conn, window) as bases:
        results = [
            run_check(check, source_conn, target_conn, window, top=top, base_relation=bases.get(check.base))
            for check in checks
        ]
    results += list(extra_results)
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
        explain_failure(report, target_conn, target_schema, rerun_interval_start=rerun_interval_start)
        if drill and not any(TIMESTAMP_HINT in hint for hint in report.diagnosis):
            report.rows = drill_to_rows(report, source_conn, target_conn, window)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def drill_to_rows(
    report: ValidationReport, source_conn: Any, target_conn: Any, window: CheckWindow
) -> DrillDown:
    """The failed checks' users and days, narrowed to rows. A drill-down that fails says so
    in the report: the verdict stands without it."""
    users: set[Any] = set()
    wide = False  # a check named more keys than it keeps: look at the whole scope
    for check in report.failed_checks:
        if check.keys == ["user_profile_id"]:
            users.update(key[0] for key in check.differing_keys)
            wide = wide or len(check.differing_keys) >= DIFFERING_KEYS
    days = report.days_to_backfill
    if wide or len(days) > MAX_DRILL_DAYS:
        users, days = set(), []
    try:
        return drill_down(source_conn, target_conn, window, users=users, days=days)
    except Exception as error:  # noqa: BLE001 - reported; the failed verdict is raised anyway
        log.exception("row drill-down failed")
        return DrillDown(region="-", capped=f"error: {type(error).__name__}: {error}")


def validate_for_run(
    plan: RunPlan,
    source_conn: Any,
    target_conn: Any,
    *,
    run_id: str | None,
    placed_outside_ids: Sequence[int] = (),
) -> ValidationReport:
    """The run plan's validation: its parity checks over everything before the interval's
    end in its scope, plus the rows the publish placed outside the interval, by id."""
    extra = []
    if placed_outside_ids:
        extra.append(compare_rows_by_id(source_conn, target_conn, plan.target_schema, placed_outside_ids))
    return run_validation(
        source_conn,
        target_conn,
        target_schema=plan.target_schema,
        window_start=plan.window_start,
        window_end=plan.window_end,
        scope=plan.scope,
        run_id=run_id,
        rerun_interval_start=plan.window_start,
        extra_results=extra,
    )
