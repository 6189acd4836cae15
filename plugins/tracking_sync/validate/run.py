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

A change-capture run applies a batch of inserts, updates and deletes on any day and
knows the users it touched (the old and the new user of every changed row) and the ids:
it is validated in scope "users" (those users' whole history, by the same checks) plus
its ids row by row:

    report = run_validation(..., scope="users", users=[17, 42])
    report = validate_for_run(plan, source, target, run_id=..., touched_users=[17, 42],
                              touched_ids=[1001, 1002])

With logical capture the source keeps changing after the run's batch: given a connection
that can read the capture's slot (`capture_conn`), validate_for_run reports the differences
that changes committed after the target's applied LSN explain as pending, not as failures
(tracking_sync.validate.pending): the next batch applies them and checks their ids and users.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tracking_sync.capture.pending import MAX_PENDING_IDS
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
from tracking_sync.validate.parity import (
    SCOPES,
    USERS,
    USERS_PER_STATEMENT,
    ParityCheck,
    checked_integers,
    load_checks,
)
from tracking_sync.validate.pending import explain_by_pending
from tracking_sync.validate.placed_rows import (
    CHANGED_ROWS_CHECK,
    CHECK_NAME,
    MAX_CHANGED_IDS,
    RowsById,
    StagedRows,
    compare_rows_by_id,
)
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
    try:
        result = compare_sorted(check, source_rows, target_rows, top=top)
    finally:  # a comparison that stops early ends both reads before the connections go on
        source_rows.close()
        target_rows.close()
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
    by_id: Sequence[RowsById] = (),
    drill: bool = True,
    users: Sequence[int] | None = None,
    users_per_statement: int = USERS_PER_STATEMENT,
) -> ValidationReport:
    """Run every parity check on both engines and build the report (never raises on a mismatch).

    Everything before `window_end` is compared; a scoped run picks the users and days of
    [window_start, window_end); scope "users" compares the `users` listed (integers; an
    empty list compares no user's rows), each with the whole history before
    `window_end`, their SQL lists cut into `users_per_statement` users. The repair of a
    scoped failure that names no day reruns the interval that starts at
    `rerun_interval_start` with a full validation. `by_id` checks (e.g. the rows a publish
    placed outside its interval) compare their ids row by row
    (tracking_sync.validate.placed_rows), the target's rows staged in the target's thread
    after its shared pass; they join the report after the parity checks. A
    failure is narrowed to the differing `action` rows (tracking_sync.validate.drilldown)
    unless `drill` is False."""
    if scope not in SCOPES:
        raise ParityCheckError(f"validation scope {scope!r} is not one of {list(SCOPES)}")
    if (scope == USERS) != (users is not None):
        raise ParityCheckError(
            "scope 'users' compares the users passed as users=[...] ([] for none); "
            f"scope {scope!r} takes no users"
        )
    started = time.perf_counter()
    checks = load_checks() if checks is None else list(checks)
    listed = None if users is None else tuple(checked_integers(users))
    window = CheckWindow(source_schema, target_schema, window_start, window_end, scope, listed)
    # The shared passes first (one scan of `action` per engine, both engines at once),
    # then each check on both engines at once, over those passes' small results.
    # The by-id checks' target rows are staged in the target's thread after its pass.
    staged = StagedRows.of(target_schema, by_id) if by_id else None
    try:
        with shared_passes(
            checks,
            source_conn,
            target_conn,
            window,
            users_per_statement,
            after_target_pass=staged.stage if staged else None,
        ) as bases:
            results = [
                run_check(
                    check, source_conn, target_conn, window, top=top, base_relation=bases.get(check.base)
                )
                for check in checks
            ]
            pass_seconds = {side: round(seconds, 3) for side, seconds in bases.seconds.items()}
        results += [
            compare_rows_by_id(
                source_conn,
                target_conn,
                target_schema,
                check.ids,
                top=top,
                name=check.name,
                max_ids=check.max_ids,
                staged=staged,
            )
            for check in by_id
        ]
    finally:
        if staged is not None:
            with contextlib.suppress(Exception):  # a broken connection is closed by its owner
                staged.drop(target_conn)
    if staged is not None:
        pass_seconds["target's rows by id"] = round(staged.seconds, 3)
    report = ValidationReport(
        dag_id=dag_id,
        run_id=run_id,
        window_start=window_start.isoformat(),
        window_end=window_end.isoformat(),
        scope=scope,
        source=f"{source_name} (PostgreSQL) schema {source_schema}",
        target=f"{target_name} (Redshift) schema {target_schema}",
        checks=results,
        users_in_scope=None if listed is None else len(listed),
        pass_seconds=pass_seconds,
    )
    if not report.passed:
        explain_failure(report, target_conn, target_schema, rerun_interval_start=rerun_interval_start)
        if drill and not any(TIMESTAMP_HINT in hint for hint in report.diagnosis):
            report.rows = drill_to_rows(report, source_conn, target_conn, window, users_per_statement)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def drill_to_rows(
    report: ValidationReport,
    source_conn: Any,
    target_conn: Any,
    window: CheckWindow,
    users_per_statement: int = USERS_PER_STATEMENT,
) -> DrillDown | None:
    """The failed checks' users and days, narrowed to rows. A drill-down that fails says so
    in the report: the verdict stands without it. None in scope "users" with no user
    listed: no `action` row is in that scope (a by-id check names its own rows)."""
    if window.scope == USERS and not window.users:
        return None
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
        return drill_down(
            source_conn, target_conn, window, users=users, days=days, users_per_statement=users_per_statement
        )
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
    touched_users: Sequence[int] | None = None,
    touched_ids: Sequence[int] = (),
    capture_conn: Any = None,
    max_pending_ids: int = MAX_PENDING_IDS,
) -> ValidationReport:
    """The run plan's validation: its parity checks over everything before the interval's
    end in its scope, plus the rows the publish placed outside the interval, by id.

    A change-capture run passes the users its batch touched (`touched_users`, the old and
    the new user of every changed row; [] when it touched none) and the ids: its parity
    checks then run in scope "users" over exactly those users, unless the plan's scope is
    full (validation=full, or a full refresh), which covers them already. The touched ids
    are compared row by row in either scope (check rows_changed_by_the_batch): the parity
    checks sum times, counts and query bytes, only a row's columns show a changed
    course_id or is_async.

    With logical capture (the plan names its slot) and `capture_conn`, a psycopg2
    connection to the source that may read the slot: a failed report whose every
    difference is explained by changes committed after the target's applied LSN passes,
    with `report.pending` saying so (tracking_sync.validate.pending); up to
    `max_pending_ids` pending ids are read."""
    started = time.perf_counter()
    by_id = []
    if placed_outside_ids:
        by_id.append(RowsById(CHECK_NAME, placed_outside_ids))
    capture = touched_users is not None
    if capture or touched_ids:
        by_id.append(RowsById(CHANGED_ROWS_CHECK, touched_ids, MAX_CHANGED_IDS))
    by_users = capture and plan.scope != "full"
    report = run_validation(
        source_conn,
        target_conn,
        target_schema=plan.target_schema,
        window_start=plan.window_start,
        window_end=plan.window_end,
        scope=USERS if by_users else plan.scope,
        users=touched_users if by_users else None,
        run_id=run_id,
        rerun_interval_start=plan.window_start,
        by_id=by_id,
    )
    report.seconds = round(time.perf_counter() - started, 3)
    if capture_conn is not None and plan.capture == "logical" and plan.slot and not report.passed:
        started = time.perf_counter()
        explain_by_pending(
            report,
            slot=plan.slot,
            after="this run's batch" if plan.applies_changes else "this run's load",
            capture_conn=capture_conn,
            target_conn=target_conn,
            target_schema=plan.target_schema,
            max_ids=max_pending_ids,
        )
        report.seconds = round(report.seconds + time.perf_counter() - started, 3)
    return report
