"""Schema: create the target schema and tables, and the run's staging table, from include/sql.

The DDL is rendered from tracking_sync.core.tables (the one column list) with the
identifiers of the run plan, and runs statement by statement with autocommit:
each statement is idempotent (`if not exists`, drop-and-create of the staging table).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from tracking_sync.capture.rows import CHANGE_COLUMNS
from tracking_sync.core.plan import RunPlan
from tracking_sync.core.sql import render_sql, render_statements
from tracking_sync.core.tables import ACTION, TABLES
from tracking_sync.load.sync_state import sync_state_statements

log = logging.getLogger(__name__)

# The names RunPlan.staging_table gives: nothing else in the schema is ever dropped.
_STAGING = re.compile(r"action_(staging|changes)_(full_refresh|\d{8}t\d{6}_\d{8}t\d{6})")


def target_tables_statements(schema: str) -> list[str]:
    return render_statements("redshift/create_target_tables.sql", schema=schema, tables=TABLES.values())


def action_changes_statements(schema: str, staging: str) -> list[str]:
    return render_statements(
        "redshift/create_action_changes.sql", schema=schema, staging=staging, change_columns=CHANGE_COLUMNS
    )


def action_staging_statements(schema: str, staging: str) -> list[str]:
    return render_statements(
        "redshift/create_staging_table.sql", schema=schema, staging=staging, table=ACTION
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
    """The schema, its tables, and the tables of its sync state (tracking_sync.load.sync_state)."""
    run_ddl(
        connection, target_tables_statements(plan.target_schema) + sync_state_statements(plan.target_schema)
    )


def create_staging_table(plan: RunPlan, connection: Any) -> None:
    """The run's staging table: the rows of its slice, or (a capture run) its changes."""
    if plan.applies_changes:
        run_ddl(connection, action_changes_statements(plan.target_schema, plan.staging_table))
    else:
        run_ddl(connection, action_staging_statements(plan.target_schema, plan.staging_table))


def staging_table_exists(plan: RunPlan, connection: Any) -> bool:
    """Whether the run's staging table (or table of changes) is there."""
    cursor = connection.cursor()
    try:
        cursor.execute(render_sql("redshift/select_staging_tables.sql", schema=plan.target_schema))
        return plan.staging_table in {name for (name,) in cursor.fetchall()}
    finally:
        cursor.close()
        connection.rollback()


def drop_leftover_staging_tables(plan: RunPlan, connection: Any) -> list[str]:
    """Drop the staging tables of `plan.target_schema` other than the run's own; call only
    when no other run is active (their tables are then leftovers of killed runs)."""
    connection.autocommit = True
    cursor = connection.cursor()
    try:
        cursor.execute(render_sql("redshift/select_staging_tables.sql", schema=plan.target_schema))
        leftovers = [
            name for (name,) in cursor.fetchall() if _STAGING.fullmatch(name) and name != plan.staging_table
        ]
        for name in leftovers:
            cursor.execute(f"drop table if exists {plan.target_schema}.{name}")
    finally:
        cursor.close()
    if leftovers:
        log.info("dropped %s staging tables left by earlier runs: %s", len(leftovers), ", ".join(leftovers))
    return leftovers
