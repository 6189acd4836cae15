"""Redshift's wording for the errors a client sees, where PostgreSQL words them otherwise.

- a failed load: "Load into table 'x' failed. Check 'stl_load_errors' ...", with
  the first rejected row in DETAIL, SQLSTATE XX000 (docs: r_COPY, r_STL_LOAD_ERRORS);
- an over-long value caught by the byte-length CHECK the compat catalog adds
  (constraint rs_<attnum>_<varchar|char>_<n>): "value too long for type
  character varying(n)", SQLSTATE 22001 (docs: r_Character_types).
"""

from __future__ import annotations

import re

from devstack.redshift import protocol
from devstack.redshift.copy import RejectedRow

_LENGTH_CHECK = re.compile(r"rs_\d+_(varchar|char)_(\d+)\Z")


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


def redshift_error_fields(fields: dict[str, str]) -> dict[str, str] | None:
    """The fields of the error Redshift would report instead of this PostgreSQL one, or None."""
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
