"""COPY: the options that read export's CSV dialect, and the rows COPY rejected, for on-call.

The COPY itself is the Amazon provider's S3ToRedshiftOperator (tracking_sync.operators):
action_type with method REPLACE (BEGIN; DELETE; COPY; COMMIT) into the target table, action
with REPLACE into the run's staging table. A failed COPY changes nothing (Redshift's COPY is
all-or-nothing) and reports its rows in stl_load_errors.
"""

from __future__ import annotations

import csv
from typing import Any

from tracking_sync.core.sql import render_sql

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


PREVIEW_CHARACTERS = 60


def describe_load_error(error: dict[str, Any], table: str) -> str:
    """One rejected row as on-call needs it: the source row's id, the column, the limit,
    Redshift's reason and a preview of the value cut on a character boundary."""
    row_id = _first_csv_field(error.get("raw_line") or "")
    where = f"{table} row id {row_id}" if row_id else f"{table} row at line {error.get('line_number')}"
    limit = f" (limit {error['col_length']} bytes)" if str(error.get("col_length") or "").strip() else ""
    return (
        f"{where}, column {error.get('colname')}{limit}: {error.get('err_reason')} "
        f"[code {error.get('err_code')}]; value {preview(error.get('raw_field_value'))}; "
        f"file {error.get('filename')} line {error.get('line_number')}"
    )


def preview(value: Any, characters: int = PREVIEW_CHARACTERS) -> str:
    """A value shortened for a log line, never cut inside a character: stl_load_errors keeps
    the first bytes of a value, which may end in the middle of a multi-byte character."""
    if value is None:
        return "NULL"
    text = str(value).rstrip("\ufffd")  # a character cut in half decodes to U+FFFD
    if len(text) <= characters:
        return repr(text)
    return f"{text[:characters]!r}... ({len(text.encode())} bytes shown of a longer value)"


def format_load_errors(errors: list[dict[str, Any]], table: str = "action") -> str:
    if not errors:
        return "stl_load_errors has no rows for these files"
    return "\n".join(describe_load_error(error, table) for error in errors)


def _first_csv_field(line: str) -> str:
    try:
        return next(csv.reader([line.split("\n", 1)[0]]))[0].strip()
    except (StopIteration, IndexError, csv.Error):
        return ""
