"""Validation as query parity: run every parity check on PostgreSQL and on Redshift, compare.

Each check (include/sql/parity/*.sql, see tracking_sync.parity) is rendered with the
run's window and run inside each database (tracking_sync.streams); the two results are
compared as sorted streams by key (tracking_sync.compare). The verdict is a
`ValidationReport` (tracking_sync.report), with the cause and the repair when it fails
(tracking_sync.diagnosis).

    report = run_validation(source_conn, target_conn, target_schema="tracking",
                            window_start=..., window_end=..., scope="scoped")
    print(report.format_table())

`run_validation` takes DB-API connections (psycopg 2/3, redshift_connector) and runs
without Airflow; `validate_task` is the thin Airflow wrapper the DAG's `validate` task
calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tracking_sync.compare import TOP_DIFFERENCES, CheckResult, compare_sorted
from tracking_sync.diagnosis import DAG_ID, explain_failure
from tracking_sync.exceptions import ParityCheckError
from tracking_sync.parity import SCOPES, ParityCheck, load_checks
from tracking_sync.report import ValidationReport
from tracking_sync.streams import CheckWindow, stream_check

log = logging.getLogger(__name__)

SOURCE_SCHEMA = "public"
REPORT_XCOM_KEY = "validation_report"


def run_check(
    check: ParityCheck, source_conn: Any, target_conn: Any, window: CheckWindow, top: int = TOP_DIFFERENCES
) -> CheckResult:
    """One check on both engines, compared; `seconds` is what it took."""
    started = time.perf_counter()
    source_rows, target_rows = stream_check(check, source_conn, target_conn, window)
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
    source_name: str = "postgres_source",
    target_name: str = "redshift_default",
    top: int = TOP_DIFFERENCES,
) -> ValidationReport:
    """Run every parity check on both engines and build the report (never raises on a mismatch)."""
    if scope not in SCOPES:
        raise ParityCheckError(f"validation scope {scope!r} is not one of {list(SCOPES)}")
    started = time.perf_counter()
    checks = load_checks() if checks is None else list(checks)
    window = CheckWindow(source_schema, target_schema, window_start, window_end, scope)
    results = [run_check(check, source_conn, target_conn, window, top=top) for check in checks]
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
        explain_failure(report, target_conn, target_schema)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


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

    from tracking_sync.names import REDSHIFT_CONN_ID, SOURCE_CONN_ID
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
