"""Why a validation failed and what to run to repair it: the end of a failed report.

    explain_failure(report, target_conn, target_schema)   # fills days_to_backfill, diagnosis, repair

The cause is named when it can be (a TIMESTAMP action_time on the target); the repair is
the command and the UI path that reload what differs: the differing days, or everything.
In scope "users" (a change-capture batch's users) it says which of the listed users,
days and rows differ: a batch changes rows on any day, so its repair is a backfill of the
days named (its per-day check covers every day of those users), or a full refresh.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tracking_sync.core.names import DAG_ID
from tracking_sync.core.params import DEFAULT_TARGET_SCHEMA
from tracking_sync.core.repairs import backfill_command, full_refresh_command, schema_conf
from tracking_sync.validate.compare import CheckResult, format_key
from tracking_sync.validate.parity import USERS, quote_identifier
from tracking_sync.validate.report import ValidationReport
from tracking_sync.validate.text import day_ranges

TIMESTAMP_HINT = (
    "action_time must be TIMESTAMPTZ on Redshift: EXTRACT(EPOCH FROM timestamp) is an "
    "integer there, so session durations lose their fractions"
)


def explain_failure(
    report: ValidationReport,
    target_conn: Any,
    target_schema: str,
    rerun_interval_start: datetime | None = None,
) -> None:
    """Add to a failed report the days that differ, the cause when known and the repair."""
    report.days_to_backfill = sorted({day for check in report.checks for day in check.days})
    wrong_type = _diagnose(report, target_conn, target_schema)
    if report.scope == USERS and not wrong_type:
        report.diagnosis.append(listed_users_hint(report))
    report.repair = repair_steps(
        report.days_to_backfill,
        dag_id=report.dag_id,
        wrong_type=wrong_type,
        scope=report.scope,
        rerun_interval_start=rerun_interval_start or datetime.fromisoformat(report.window_start),
        target_schema=target_schema,
    )


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


def repair_steps(
    days: Sequence[str],
    *,
    dag_id: str = DAG_ID,
    wrong_type: bool = False,
    scope: str = "full",
    rerun_interval_start: datetime | None = None,
    target_schema: str = DEFAULT_TARGET_SCHEMA,
) -> list[str]:
    """What to run to make the target right again, for the report: each CLI line runs as
    printed (tests/faults/test_repair_commands.py runs every kind), into the same schema."""
    schema = schema_conf(target_schema)
    full_refresh_cli = full_refresh_command(target_schema, dag_id)
    full_refresh_ui = f"UI: {dag_id} > Trigger > mode = full_refresh" + (
        f", target_schema = {target_schema}" if schema else ""
    )
    if wrong_type:
        return [
            "Fix the target DDL first (a reload into the same TIMESTAMP column fails again): "
            "drop the target tables (or alter action_time to TIMESTAMPTZ), let create_schema "
            "recreate them from include/sql/redshift, then reload everything:",
            f"CLI: {full_refresh_cli}",
            full_refresh_ui,
        ]
    if not days and scope == "scoped" and rerun_interval_start is not None:
        # A scoped run counts days only inside its interval: another row of one of the
        # interval's users differs. A full validation names its day. A backfill of the
        # interval reruns its existing run with the new conf (a manual trigger with the
        # same logical date would collide with the scheduled run that has it).
        day = rerun_interval_start.astimezone(UTC).date().isoformat()
        conf = {"validation": "full", **schema}
        return [
            "Users differ outside this interval's days: find the days with a full validation "
            "(its per-day check names them), then backfill those days:",
            f"CLI: {backfill_command(day, day, conf, dag_id)}",
            f"UI: {dag_id} > Trigger > Backfill, Date Range {day} to {day}, Reprocess Behaviour "
            f"'All Runs', Max Active Runs 1, Advanced Options > Configuration JSON {json.dumps(conf)}",
            f"or reload everything: {full_refresh_cli}",
        ]
    if not days:
        return [
            "No day is singled out: reload everything with a full refresh.",
            f"CLI: {full_refresh_cli}",
            full_refresh_ui,
        ]
    ranges = day_ranges(days)
    if len(ranges) > 5:  # one backfill over the span beats a page of commands
        ranges = [(ranges[0][0], ranges[-1][1])]
    if scope == USERS:
        steps = [
            "Reload the days on which the listed users' rows differ (a change batch touches "
            "any day; each day is one daily interval, reruns are idempotent):"
        ]
    else:
        steps = ["Reload the differing days (each day is one daily interval; reruns are idempotent):"]
    steps += [f"CLI: {backfill_command(first, last, schema, dag_id)}" for first, last in ranges]
    steps.append(
        f"UI: {dag_id} > Trigger > Backfill, Date Range "
        + ", ".join(f"{first} to {last}" for first, last in ranges)
        + ", Reprocess Behaviour 'All Runs', Max Active Runs 1"
        + (f", Configuration JSON {json.dumps(schema)}" if schema else "")
    )
    steps.append(f"or a full refresh: {full_refresh_cli}")
    return steps


def listed_users_hint(report: ValidationReport, first: int = 5) -> str:
    """What differs in scope "users", check by check: the users, days or ids it names."""
    parts = [f"{check.name} {_named_keys(check, first)}" for check in report.failed_checks]
    return (
        f"the listed users differ (a change-capture run lists its batch's users, each "
        f"compared over the whole history before {report.window_end}): {'; '.join(parts)}"
    )


def _named_keys(check: CheckResult, first: int) -> str:
    """`user_profile_id 17, 42 and 3 more`: the keys a failed check names."""
    keys = check.differing_keys or (
        [d.key for d in check.top_differences]
        + check.missing_in_target_sample
        + check.missing_in_source_sample
    )
    shown = list(dict.fromkeys(format_key(key) for key in keys))[:first]
    count = check.differing + check.missing_in_target + check.missing_in_source
    more = f" and {count - len(shown)} more" if count > len(shown) else ""
    return f"{', '.join(check.keys)} {', '.join(shown)}{more}"


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
