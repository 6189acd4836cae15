"""Which engine a connection talks to, for the few places the SQL must differ.

The parity checks are written once in the dialect both engines share; the row
drill-down's checksum (hex to number) and the shared pass's planner settings cannot be.
The engine is asked, not configured: the Redshift stand-in speaks PostgreSQL's
protocol but is Redshift to the pipeline, and answers as the PostgreSQL behind it does.
"""

from __future__ import annotations

from typing import Any

REDSHIFT = "redshift"
POSTGRESQL = "postgresql"


def engine_dialect(conn: Any) -> str:
    """ "redshift" when the engine has STRTOL (Redshift's hex to number), else "postgresql"."""
    cursor = conn.cursor()
    try:
        cursor.execute("select strtol('ff', 16)")
        cursor.fetchall()
        return REDSHIFT
    except Exception:  # noqa: BLE001 - the probe's error is the answer (undefined function)
        return POSTGRESQL
    finally:
        try:
            cursor.close()
        finally:
            conn.rollback()
