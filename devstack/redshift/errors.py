"""Redshift's wording for the errors a client sees, where PostgreSQL words them otherwise.

- a failed load: "Load into table 'x' failed. Check 'stl_load_errors' ...", with
  the first rejected row in DETAIL, SQLSTATE XX000 (docs: r_COPY, r_STL_LOAD_ERRORS);
- an over-long value caught by the byte-length CHECK the compat catalog adds
  (constraint rs_<attnum>_<varchar|char>_<n>): "value too long for type
  character varying(n)", SQLSTATE 22001 (docs: r_Character_types);
- a serialization failure (SQLSTATE 40001: every stand-in session runs
  SERIALIZABLE, as Redshift does): "1023" with "Serializable isolation violation
  on table - <table id>, ..." in DETAIL, SQLSTATE XX000
  (docs: c_serial_isolation, c_serial_isolation-serializable-isolation-troubleshooting);
- a MERGE whose source has several rows for one target row: "Found multiple matches to
  update the same tuple.", SQLSTATE XX000 (docs: r_MERGE usage notes);
- a statement the stand-in refuses as Redshift does (refusals.py): raised by
  pg_catalog.rs_refuse, whose PL/pgSQL context line is not Redshift's and is dropped.
"""

from __future__ import annotations

import re

from devstack.redshift import protocol
from devstack.redshift.copy import RejectedRow
from devstack.redshift.tokens import QIDENT, WORD, significant, tokenize

_LENGTH_CHECK = re.compile(r"rs_\d+_(varchar|char)_(\d+)\Z")
SERIALIZATION_FAILURE = "40001"


def load_failed(table: str, first: RejectedRow, query_id: int) -> tuple[str, str]:
    """(message, detail) of a COPY that rejected more rows than MAXERROR allows."""
    message = f"Load into table '{table}' failed. Check 'stl_load_errors' system table for details."
    detail = (
        "\n  -----------------------------------------------\n"
        f"  error:  {first.err_reason}\n"
        f"  code:      {first.err_code}\n"
        f"  context:   {first.colname or first.raw_line[:100]}\n"
        f"  query:     {query_id}\n"
        f"  location:  {first.filename}:{first.line_number}\n"
        "  -----------------------------------------------\n"
    )
    return message, detail


_REFUSAL_CONTEXT = "PL/pgSQL function rs_refuse("
_MERGE_TWICE = "MERGE command cannot affect row a second time"


def redshift_error_fields(fields: dict[str, str]) -> dict[str, str] | None:
    """The fields of the error Redshift would report instead of this PostgreSQL one, or None."""
    if _REFUSAL_CONTEXT in fields.get("W", ""):
        return {k: v for k, v in fields.items() if k not in ("W", "q", "p") and (v or k not in ("D", "H"))}
    if fields.get("C") == "21000" and fields.get("M", "").startswith(_MERGE_TWICE):
        out = {k: v for k, v in fields.items() if k in ("S", "V")}
        out["C"] = "XX000"
        out["M"] = "Found multiple matches to update the same tuple."
        out["H"] = (
            "the MERGE's source has several rows for one target row: deduplicate the staging "
            f"rows first (docs: r_MERGE). PostgreSQL: {fields.get('M', '')}"
        )
        return out
    match = _LENGTH_CHECK.match(fields.get("n", "")) if fields.get("C") == "23514" else None
    if match:
        kind = "character varying" if match.group(1) == "varchar" else "character"
        out = {k: v for k, v in fields.items() if k != "D"}
        out["C"] = "22001"
        out["M"] = f"value too long for type {kind}({match.group(2)})"
        return out
    return None


def translate_error(payload: bytes) -> bytes:
    """An ErrorResponse as Redshift would word it (the payload as received when it is the same)."""
    fields = protocol.error_fields(payload)
    translated = redshift_error_fields(fields)
    if translated is None:
        return protocol.message(protocol.Backend.ERROR_RESPONSE, payload)
    return protocol.error_response_from_fields(translated)


def translate_notice(payload: bytes) -> bytes:
    """A NoticeResponse without the PL/pgSQL context of rs_refuse's INFO lines."""
    if _REFUSAL_CONTEXT.encode() not in payload:
        return protocol.message(protocol.Backend.NOTICE_RESPONSE, payload)
    fields = {k: v for k, v in protocol.error_fields(payload).items() if k != "W"}
    body = b"".join(k.encode() + v.encode("utf-8") + b"\0" for k, v in fields.items()) + b"\0"
    return protocol.message(protocol.Backend.NOTICE_RESPONSE, body)


def serializable_isolation_violation(fields: dict[str, str], table_id: int, pid: int) -> dict[str, str]:
    """A PostgreSQL serialization failure as Redshift's error 1023.

    Redshift names the table and the transactions forming the cycle; PostgreSQL
    names neither, so the table is the one the failed statement wrote to (0 when
    not known) and the transactions are said to be unknown. PostgreSQL's own
    message is kept as the HINT.
    """
    out = {k: v for k, v in fields.items() if k in ("S", "V")}
    out["C"] = "XX000"
    out["M"] = "1023"
    out["D"] = (
        f"Serializable isolation violation on table - {table_id}, "
        f"transactions forming the cycle are: unknown to the stand-in (pid:{pid})"
    )
    out["H"] = f"PostgreSQL: {fields.get('M', '')}. {fields.get('D', '')}".strip()
    return out


def written_table(sql: str | None) -> str | None:
    """The table a DELETE, UPDATE, INSERT, MERGE, COPY or TRUNCATE writes to, as written, or None."""
    if not sql:
        return None
    sig = significant(tokenize(sql))
    if not sig:
        return None
    skip = {"DELETE": ("FROM",), "INSERT": ("INTO",), "MERGE": ("INTO",), "TRUNCATE": ("TABLE", "ONLY")}
    first = sig[0].upper
    if first not in ("DELETE", "UPDATE", "INSERT", "MERGE", "COPY", "TRUNCATE"):
        return None
    i = 1
    while i < len(sig) and sig[i].is_word(*skip.get(first, ()), "ONLY"):
        i += 1
    parts = []
    while i < len(sig) and sig[i].kind in (WORD, QIDENT):
        parts.append(sig[i].text)
        if i + 1 < len(sig) and sig[i + 1].is_op("."):
            i += 2
            continue
        break
    return ".".join(parts) or None
