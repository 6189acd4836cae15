"""Schema: create the target schema and tables, and the run's staging table, from include/sql.

The DDL is rendered from tracking_sync.tables (the one column list) with the
identifiers of the run plan, and runs statement by statement with autocommit:
each statement is idempotent (`if not exists`, drop-and-create of the staging table).
"""

from __future__ import annotations

from typing import Any

from tracking_sync.plan import RunPlan
from tracking_sync.sql_templates import render_statements
from tracking_sync.tables import ACTION, TABLES


def target_tables_statements(schema: str) -> list[str]:
    return render_statements("redshift/create_target_tables.sql", schema=schema, tables=TABLES.values())


def action_staging_statements(schema: str, staging: str) -> list[str]:
    return render_statements(
        "redshift/create_action_staging.sql", schema=schema, staging=staging, table=ACTION
    )


def run_ddl(connection: Any, statements: list[str]) -> None:
    """Run each statement in its own transaction (autocommit), in order."""
    connection.autocommit = True
    cursor = connection.cursor()
    try:
        for statement in statements:
            cursor.execute(statement)
    finally:
        cursor.close()


def create_target_tables(plan: RunPlan, connection: Any) -> None:
    run_ddl(connection, target_tables_statements(plan.target_schema))


def create_action_staging(plan: RunPlan, connection: Any) -> None:
    run_ddl(connection, action_staging_statements(plan.target_schema, plan.staging_table))
