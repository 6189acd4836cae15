"""The row fast path of a COPY: rows that need no conversion, recognized whole.

A row whose every field is already what PostgreSQL parses exactly
as Redshift would (a small integer, a valid ISO timestamp, a short string, the
NULL AS marker, ...) is passed on unchanged. Per row: one join and one regex
match, no Python call per field; the CSV for PostgreSQL (every field quoted, the
NULL marker not) is made for thousands of rows at once by str.replace and one
re.sub (batch_quoter). Every pattern accepts a SUBSET of what the per-field
converters pass through unchanged; any other row takes the converters (and may
be rejected) as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from devstack.redshift.copy.convert import INT_FAST_DIGITS, TargetColumn
from devstack.redshift.copy.statement import CopySpec

FIELD_SEP = "\0"  # joins the fields; no pattern matches it, so a row only matches field by field
ROW_SEP = "\x01"  # joins the rows of a batch; no pattern matches it either
_MONTH_DAY = (
    r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|(?:0[13578]|1[02])-31)"  # 29 February goes the slow way (leap years)
)
_FAST_DATE = r"(?!0000)\d{4}-" + _MONTH_DAY
_FAST_TIMESTAMP = _FAST_DATE + r"(?: (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?)?"
_FAST_BOOL = r"(?i:t|true|y|yes|1|f|false|n|no|0)"
_FAST_FLOAT = r"[+-]?\d{1,15}(?:\.\d{1,15})?"


def _field_pattern(col: TargetColumn, spec: CopySpec) -> str | None:
    """The regex of this column's fields that need no conversion, or None."""
    typ = col.typname
    if typ in INT_FAST_DIGITS:
        pattern = rf"[+-]?\d{{1,{INT_FAST_DIGITS[typ]}}}"
    elif typ in ("varchar", "bpchar") and col.typmod >= 4:
        if spec.blanksasnull or spec.trimblanks:
            return None
        limit = col.typmod - 4
        least = 1 if spec.emptyasnull else 0
        # ASCII: characters are bytes; otherwise up to 4 bytes a character. Never
        # the two separators (PostgreSQL refuses NUL anyway) nor undecodable bytes.
        pattern = rf"[\x02-\x7f]{{{least},{limit}}}"
        if limit >= 4:
            pattern += rf"|[^\x00\x01\udc80-\udcff]{{{least},{limit // 4}}}"
    elif typ == "numeric" and col.typmod >= 4 and not spec.roundec:
        scale = (col.typmod - 4) & 0xFFFF
        whole = ((col.typmod - 4) >> 16) - scale
        if whole < 1:
            return None
        pattern = rf"[+-]?\d{{1,{whole}}}" + (rf"(?:\.\d{{1,{scale}}})?" if scale else "")
    elif typ in ("float4", "float8"):
        pattern = _FAST_FLOAT
    elif typ == "bool":
        pattern = _FAST_BOOL
    elif typ == "date" and (spec.dateformat is None or spec.dateformat.upper() == "YYYY-MM-DD"):
        pattern = _FAST_DATE
    elif typ in ("timestamp", "timestamptz") and (
        spec.timeformat is None or spec.timeformat.upper() == "YYYY-MM-DD HH:MI:SS"
    ):
        pattern = _FAST_TIMESTAMP
    else:
        return None
    null = re.escape(spec.null_as)
    if col.not_null:  # NULL AS in a NOT NULL column is a load error: the slow way
        return rf"(?>(?!{null}(?:\x00|\Z))(?:{pattern}))"
    return rf"(?>{null}|{pattern})"


def row_pattern(columns: list[TargetColumn], spec: CopySpec) -> re.Pattern | None:
    """A regex matching the NUL-joined fields of a row that can go to PostgreSQL as is.

    Needs NULL AS to be PostgreSQL's NULL marker too (CopySpec.pg_null) and two
    columns or more: a one-field row could read as an empty line or as end-of-data.
    """
    if not spec.pg_null or len(columns) < 2:
        return None
    patterns = [_field_pattern(c, spec) for c in columns]
    if any(p is None for p in patterns):
        return None
    return re.compile("\x00".join(patterns), re.DOTALL)


def batch_quoter(spec: CopySpec) -> Callable[[list[str]], str]:
    """NUL-joined rows that matched row_pattern → PostgreSQL CSV lines.

    Every field is quoted, then the NULL markers are unquoted again: a `"\\N"`
    preceded by a comma or newline and followed by one can only be a whole field
    (inside a quoted value every quote is doubled)."""
    # the quote first, then the look behind it: a literal start lets re skip ahead (3x faster)
    null_field = re.compile(r'"(?<![^,\n]")' + re.escape(spec.pg_null) + r'"(?![^,\n])')
    unquoted = spec.pg_null.replace("\\", "\\\\")  # a re.sub template

    def quote_rows(rows: list[str]) -> str:
        body = ROW_SEP.join(rows).replace('"', '""').replace(FIELD_SEP, '","').replace(ROW_SEP, '"\n"')
        return null_field.sub(unquoted, '"' + body + '"\n')

    return quote_rows
