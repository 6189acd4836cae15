"""psql's catalog queries for a Redshift server, made to run on the PostgreSQL backend.

psql picks its catalog queries by the server's version: the stand-in reports
Redshift's 8.0.2, so psql's \\d, \\df, ... ask for catalog columns PostgreSQL
8.x had and PostgreSQL 12+ dropped (pg_class.relhasoids, pg_proc.proisagg, ...),
as Redshift's catalog still has them. Each such column, written qualified
(``c.relhasoids``), is replaced by the expression that gives the same answer on
the backend. Applied to catalog queries only (those that name pg_catalog), where
these names cannot be a user's column.
"""

from __future__ import annotations

from devstack.redshift.tokens import WORD, Token

# column → its value from the same row of today's catalog; {t} is the row's alias
DROPPED_CATALOG_COLUMNS = {
    "relhasoids": "false",  # pg_class: no table has OIDs since PostgreSQL 12
    "proisagg": "({t}.prokind = 'a')",  # pg_proc, replaced by prokind in 11
    "proiswindow": "({t}.prokind = 'w')",
    "adsrc": "pg_catalog.pg_get_expr({t}.adbin, {t}.adrelid)",  # pg_attrdef, gone in 12
    "consrc": "pg_catalog.pg_get_constraintdef({t}.oid)",  # pg_constraint, gone in 12
}


def rewrite_dropped_catalog_columns(sig: list[Token], base: int, replace: dict[int, str]) -> None:
    """``alias.column`` of a dropped catalog column → its expression (sig: significant tokens)."""
    for i in range(2, len(sig)):
        column = sig[i]
        if column.kind != WORD or column.text.lower() not in DROPPED_CATALOG_COLUMNS:
            continue
        alias = sig[i - 2]
        if not sig[i - 1].is_op(".") or alias.kind != WORD:
            continue
        replace[base + i - 2] = DROPPED_CATALOG_COLUMNS[column.text.lower()].format(t=alias.text)
        # emptied, not dropped: a drop takes the white space after it too
        replace[base + i - 1] = replace[base + i] = ""
