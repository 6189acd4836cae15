"""Load: COPY the staged parts into Redshift and publish them, idempotently and atomically.

- action_type is small and always moved whole: S3ToRedshiftOperator with method
  REPLACE (BEGIN; DELETE; COPY; COMMIT) into the target table.
- action moves one interval at a time: COPY (REPLACE) into the run's staging table,
  then publish_action replaces the target's rows of the interval with the staged
  rows in one transaction. Rerunning an interval gives the same target, rows deleted
  or changed in the source inside it included; a failed COPY touches only staging.

The COPY options below match export.py's CSV dialect.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlparse

from tracking_sync.params import RunSlice, slice_from_plan, validate_params
from tracking_sync.sql_templates import render_sql
from tracking_sync.tables import ACTION

log = logging.getLogger(__name__)

COPY_OPTIONS = [
    "manifest",  # exactly the parts listed, each mandatory (staging.manifest_document)
    "format as csv",
    "zstd",
    # NULL is an unquoted \N; '' is written quoted (""), which Redshift loads into VARCHAR
    # as ''. EMPTYASNULL is deliberately absent: it would turn '' into NULL.
    "null as '\\N'",
    # action_time is written as 2025-01-01 12:00:00.123456+00: 'auto' reads the fraction
    # and the offset into TIMESTAMPTZ as the same instant.
    "timeformat 'auto'",
    # No TRUNCATECOLUMNS, no MAXERROR: a value that does not fit fails the load instead of
    # being cut or skipped without a word.
]


def action_staging_table(
    params: Mapping[str, Any], data_interval_start: datetime, data_interval_end: datetime
) -> str:
    """The name of the run's staging table for action, e.g. action_staging_20250301t000000_…"""
    run_slice = RunSlice.for_run(validate_params(params), data_interval_start, data_interval_end)
    return staging_table_name(run_slice)


def staging_table_name(run_slice: RunSlice) -> str:
    return f"action_staging_{run_slice.label}"


def publish_statements(schema: str, staging: str, run_slice: RunSlice) -> list[str]:
    sql = render_sql(
        "redshift/replace_action_rows.sql",
        schema=schema,
        staging=staging,
        columns=ACTION.column_names,
        expressions=ACTION.publish_expressions,
        full_refresh=run_slice.full_refresh,
    )
    return [s.strip().rstrip(";") for s in sqlparse.split(sql) if _has_code(s)]


def publish_action(connection: Any, schema: str, staging: str, run_slice: RunSlice) -> int:
    """Replace the target's rows of the slice with the staged rows, in one transaction.

    `connection` is a DB-API connection to Redshift with autocommit off; returns the
    number of rows inserted.
    """
    bounds = {} if run_slice.full_refresh else _bounds(run_slice)
    inserted = 0
    cursor = connection.cursor()
    cursor.paramstyle = "pyformat"  # redshift_connector defaults to "format"
    try:
        for statement in publish_statements(schema, staging, run_slice):
            uses_bounds = "%(start)s" in statement
            cursor.execute(statement, bounds if uses_bounds else None)
            if statement.lower().startswith("insert"):
                inserted = cursor.rowcount
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()
    return inserted


def load_errors(connection: Any, s3_prefix: str) -> list[dict[str, Any]]:
    """The latest stl_load_errors rows for files under `s3_prefix` (s3://bucket/key/)."""
    cursor = connection.cursor()
    cursor.paramstyle = "pyformat"
    try:
        cursor.execute(render_sql("redshift/select_load_errors.sql"), {"prefix": s3_prefix + "%"})
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        cursor.close()
        connection.rollback()


def format_load_errors(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "stl_load_errors has no rows for these files"
    lines = ["file | line | column | code | reason | value"]
    for error in errors:
        lines.append(
            " | ".join(
                str(error[name])
                for name in (
                    "filename",
                    "line_number",
                    "colname",
                    "err_code",
                    "err_reason",
                    "raw_field_value",
                )
            )
        )
    return "\n".join(lines)


def _bounds(run_slice: RunSlice) -> dict[str, datetime]:
    assert run_slice.start is not None and run_slice.end is not None
    # Aware datetimes: the driver sends them with their offset, so the comparison with
    # the TIMESTAMPTZ column is on the instant whatever the session time zone.
    return {"start": run_slice.start, "end": run_slice.end}


def _has_code(statement: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines())


def publish_for_run(plan: Mapping[str, Any], connection: Any = None) -> int:
    """The publish task: the run's staged action rows replace the target's rows of the slice."""
    run_slice = slice_from_plan(plan)
    staging = staging_table_name(run_slice)
    own_connection = connection is None
    if own_connection:
        from tracking_sync.connections import redshift_connection

        connection = redshift_connection()
    try:
        inserted = publish_action(connection, plan["target_schema"], staging, run_slice)
    finally:
        if own_connection:
            connection.close()
    log.info("published %s rows of action for %s", inserted, run_slice.label)
    return inserted
