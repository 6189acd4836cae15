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
from datetime import datetime
from typing import Any

from tracking_sync.plan import RunPlan, RunSlice
from tracking_sync.sql_templates import render_sql, render_statements
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


def publish_statements(schema: str, staging: str, run_slice: RunSlice) -> list[str]:
    return render_statements(
        "redshift/replace_action_rows.sql",
        schema=schema,
        staging=staging,
        columns=ACTION.column_names,
        expressions=ACTION.publish_expressions,
        full_refresh=run_slice.full_refresh,
    )


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


def publish_for_run(plan: RunPlan, connection: Any) -> int:
    """The publish task: the run's staged action rows replace the target's rows of the slice."""
    inserted = publish_action(connection, plan.target_schema, plan.staging_table, plan.run_slice)
    log.info("published %s rows of action for %s", inserted, plan.slice_label)
    return inserted
