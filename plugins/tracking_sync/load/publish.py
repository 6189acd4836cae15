"""Publish: the run's staged action rows replace the target's rows of its slice, in one transaction.

Rerunning an interval gives the same target, rows deleted or changed in the source inside it
included; a failed COPY touched only the staging table. A full refresh swaps its staging table
in (tracking_sync.load.swap), or copies when a swap would change more than the rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tracking_sync.core.errors import ReloadSuperseded
from tracking_sync.core.lsn import format_lsn
from tracking_sync.core.plan import RunPlan, RunSlice
from tracking_sync.core.repairs import full_refresh_command
from tracking_sync.core.snapshot import Snapshot
from tracking_sync.core.sql import render_sql, render_statements
from tracking_sync.core.tables import ACTION
from tracking_sync.load.moved_rows import carry_moved_rows, source_rows_by_id
from tracking_sync.load.swap import swap_in
from tracking_sync.load.sync_state import (
    SyncState,
    bootstrapped_by,
    forget_reloads,
    record_reload,
    write_sync_state,
)

log = logging.getLogger(__name__)


def publish_statements(schema: str, staging: str, run_slice: RunSlice) -> list[str]:
    return render_statements(
        "redshift/replace_action_rows.sql",
        schema=schema,
        staging=staging,
        columns=ACTION.column_names,
        expressions=ACTION.publish_expressions,
        full_refresh=run_slice.full_refresh,
    )


@dataclass
class PublishResult:
    inserted: int = 0
    carried: list[int] = field(default_factory=list)  # ids moved out of the interval, re-placed
    moved_in: list[int] = field(default_factory=list)  # staged ids the target had elsewhere
    deleted_in_source: list[int] = field(default_factory=list)  # ids gone from the source

    @property
    def placed_outside(self) -> list[int]:
        """Ids this publish wrote or removed outside its interval: validate checks them."""
        return sorted(set(self.carried) | set(self.moved_in))

    def summary(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted,
            "carried": len(self.carried),
            "moved_in": len(self.moved_in),
            "deleted_in_source": len(self.deleted_in_source),
            "placed_outside_ids": self.placed_outside,
        }


def publish_action(
    connection: Any,
    schema: str,
    staging: str,
    run_slice: RunSlice,
    read_source_rows: Callable[[list[int]], list[tuple]] | None = None,
    record: Callable[[Any], None] | None = None,
) -> PublishResult:
    """Replace the target's rows of the slice with the staged rows, in one transaction.

    The transaction first locks the target table (a concurrent publish waits). Rows the
    target holds in the interval but the source no longer does there are looked up in
    the source by id (`read_source_rows`): those that moved to another interval are
    carried there in the same transaction; those the source deleted go. A full refresh
    swaps the staging table in instead (swap_in_action.sql) when nothing the target is
    would change by it, and copies otherwise. `record(cursor)` runs in the same transaction
    before the target's rows are replaced (the sync state and the reload's snapshot).
    `connection` is a DB-API connection to Redshift with autocommit off.
    """
    if run_slice.full_refresh:
        swapped = swap_in(connection, schema, staging, record=record)
        if swapped is not None:
            return PublishResult(inserted=swapped)
    result = PublishResult()
    bounds = {} if run_slice.full_refresh else _bounds(run_slice)
    cursor = connection.cursor()
    cursor.paramstyle = "pyformat"  # redshift_connector defaults to "format"
    try:
        for statement in render_statements("redshift/lock_action.sql", schema=schema):
            cursor.execute(statement)
        if not run_slice.full_refresh:
            cursor.execute(
                render_sql("redshift/select_moved_in_action_ids.sql", schema=schema, staging=staging), bounds
            )
            result.moved_in = [row[0] for row in cursor.fetchall()]
            if read_source_rows is not None:
                result.carried, result.deleted_in_source = carry_moved_rows(
                    cursor, schema, staging, bounds, read_source_rows
                )
        if record is not None:
            record(cursor)
        for statement in publish_statements(schema, staging, run_slice):
            cursor.execute(statement, bounds if "%(start)s" in statement else None)
            if statement.lower().startswith("insert"):
                result.inserted = cursor.rowcount
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()
    return result


def _bounds(run_slice: RunSlice) -> dict[str, datetime]:
    assert run_slice.start is not None and run_slice.end is not None
    # Aware datetimes: the driver sends them with their offset, so the comparison with
    # the TIMESTAMPTZ column is on the instant whatever the session time zone.
    return {"start": run_slice.start, "end": run_slice.end}


def publish_for_run(
    plan: RunPlan,
    connection: Any,
    source_connection: Any,
    *,
    uploaded: dict | None = None,
    run_id: str = "",
) -> dict[str, Any]:
    """The publish task: the run's staged action rows replace the target's rows of the slice,
    and rows that moved out of it in the source are carried to their new place; with them, in
    the same transaction, what the target now holds (tracking_sync.load.sync_state)."""
    snapshots = (uploaded or {}).get("snapshots") or []
    result = publish_action(
        connection,
        plan.target_schema,
        plan.staging_table,
        plan.run_slice,
        read_source_rows=lambda ids: source_rows_by_id(source_connection, ids),
        record=lambda cursor: record_sync_state(cursor, plan, snapshots, run_id),
    )
    log.info("published %s rows of action for %s", result.inserted, plan.slice_label)
    return result.summary()


def refuse_superseded_reload(plan: RunPlan, state: SyncState | None) -> None:
    """A full refresh with logical capture sets the applied LSN to where its export started. Its
    publish, cleared and run again after a later run applied changes past that, would put its
    older rows back and set the applied LSN back: the changes in between would be lost (the slot
    has moved past them). Refused, before anything changes."""
    if not plan.full_refresh or plan.capture != "logical" or plan.start_lsn is None:
        return
    if state is None or state.applied_lsn is None or state.applied_lsn <= plan.start_lsn:
        return
    raise ReloadSuperseded(
        f"{plan.target_schema} has applied changes up to {format_lsn(state.applied_lsn)}, after this "
        f"full refresh's export started ({format_lsn(plan.start_lsn)}): publishing its rows again "
        "would put older rows back and lose those changes. Nothing was changed. To reload "
        f"everything, trigger a new full refresh: {full_refresh_command(plan.target_schema)}"
    )


def record_sync_state(cursor: Any, plan: RunPlan, snapshots: list[dict], run_id: str) -> None:
    """What a reload tells the target's sync state, inside its publish transaction.

    With logical capture, a full load forgets older reloads and records its partitions'
    snapshots, and sets the applied LSN to the one planned before its export (everything
    committed before it is in the reload); an interval reload records its snapshot over the
    interval's ids. With interval capture, a bootstrap marks the target
    loaded. A capture batch writes its own (tracking_sync.load.apply_changes)."""
    schema = plan.target_schema
    if plan.capture != "logical":
        if plan.bootstrap:
            write_sync_state(
                cursor,
                schema,
                capture="interval",
                slot=None,
                applied_lsn=None,
                applied_at=plan.window_end,
                bootstrapped_by=run_id,
                run_id=run_id,
            )
        return
    if plan.full_refresh:
        forget_reloads(cursor, schema)
        for entry in snapshots:
            partition = entry.get("partition") or {}
            record_reload(
                cursor,
                schema,
                plan.staging_table,
                f"{run_id}:{partition.get('index', 0)}",
                Snapshot.from_xcom(entry["snapshot"]),
                id_range=(partition.get("id_from"), partition.get("id_to")),
            )
        previous = None if plan.bootstrap else bootstrapped_by(cursor, schema)
        write_sync_state(
            cursor,
            schema,
            capture="logical",
            slot=plan.slot,
            applied_lsn=plan.start_lsn,
            applied_at=plan.window_end,
            bootstrapped_by=run_id if plan.bootstrap else previous,
            run_id=run_id,
        )
        return
    for entry in snapshots:
        record_reload(
            cursor,
            schema,
            plan.staging_table,
            f"{run_id}:{plan.slice_label}",
            Snapshot.from_xcom(entry["snapshot"]),
            interval=(plan.run_slice.start, plan.run_slice.end),
        )
