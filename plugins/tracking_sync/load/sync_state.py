"""The target's sync state: what it holds of the source, kept beside the tables it holds.

    sync_state        one row per table once it was bootstrapped: the capture, the slot, and
                      the applied LSN (every change committed on the source before it is in
                      the target), written in the same transaction as the rows it describes
    capture_batches   the LSN each capture run reads up to, fixed when the run is first planned
    capture_reloads   the snapshots of reloads the applied LSN has not passed yet, and the rows
                      they cover: a change such a reload already saw is not applied over it

The tables are created with the schema (include/sql/redshift/create_sync_state.sql). Read
with an open DB-API connection to Redshift; written inside the publish's transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracking_sync.core.snapshot import Snapshot
from tracking_sync.core.sql import render_sql, render_statements

# Redshift's BIGINT for ids without a bound: a partition open below or above.
LOWEST_ID, HIGHEST_ID = -(1 << 63), (1 << 63) - 1


@dataclass(frozen=True)
class SyncState:
    capture: str  # logical | interval
    slot: str | None
    applied_lsn: int | None
    bootstrapped_by: str | None
    applied_at: datetime | None = None


def sync_state_statements(schema: str) -> list[str]:
    return render_statements("redshift/create_sync_state.sql", schema=schema)


def read_sync_state(connection: Any, schema: str) -> SyncState | None:
    """The target's sync state of action; None before its bootstrap (or before the schema)."""
    cursor = connection.cursor()
    try:
        cursor.execute(
            "select count(*) from pg_tables where schemaname = %s and tablename = 'sync_state'", (schema,)
        )
        if cursor.fetchone()[0] == 0:
            return None
        cursor.execute(render_sql("redshift/select_sync_state.sql", schema=schema))
        row = cursor.fetchone()
    finally:
        cursor.close()
        connection.rollback()
    return _state(row)


def _state(row: tuple | None) -> SyncState | None:
    if row is None:
        return None
    capture, slot, applied_lsn, bootstrapped_by, applied_at = row
    return SyncState(
        capture=str(capture).strip(),
        slot=None if slot is None else str(slot).strip(),
        applied_lsn=None if applied_lsn is None else int(applied_lsn),
        bootstrapped_by=bootstrapped_by,
        applied_at=applied_at,
    )


def planned_batch_upto(
    connection: Any, schema: str, run_id: str, slot: str, current_lsn: Callable[[], int]
) -> int:
    """The LSN this run captures up to: the one recorded when the run was first planned, or
    `current_lsn()` recorded now. A rerun of the run reads the same batch."""
    cursor = connection.cursor()
    try:
        params = {"run_id": run_id, "slot": slot}
        cursor.paramstyle = "pyformat"
        cursor.execute(render_sql("redshift/select_capture_batch.sql", schema=schema), params)
        row = cursor.fetchone()
        if row is not None:
            connection.rollback()
            return int(row[0])
        upto = current_lsn()
        cursor.execute(
            render_sql("redshift/insert_capture_batch.sql", schema=schema), params | {"upto_lsn": upto}
        )
        connection.commit()
        return upto
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()


def applied_lsn_for_update(cursor: Any, schema: str) -> int | None:
    """The applied LSN, read inside the publish transaction (after the lock)."""
    cursor.execute(render_sql("redshift/select_sync_state.sql", schema=schema))
    row = cursor.fetchone()
    return None if row is None or row[2] is None else int(row[2])


def bootstrapped_by(cursor: Any, schema: str) -> str | None:
    """The run that bootstrapped the target, read inside the publish transaction."""
    cursor.execute(render_sql("redshift/select_sync_state.sql", schema=schema))
    row = cursor.fetchone()
    return None if row is None else row[3]


def write_sync_state(
    cursor: Any,
    schema: str,
    *,
    capture: str,
    slot: str | None,
    applied_lsn: int | None,
    applied_at: datetime | None,
    bootstrapped_by: str | None,
    run_id: str,
) -> None:
    """Set the sync state of action, inside the publish transaction (pyformat cursor)."""
    for statement in render_statements("redshift/write_sync_state.sql", schema=schema):
        cursor.execute(
            statement,
            {
                "capture": capture,
                "slot": slot,
                "applied_lsn": applied_lsn,
                "applied_at": applied_at,
                "bootstrapped_by": bootstrapped_by,
                "run_id": run_id,
            }
            if "%(" in statement
            else None,
        )


def record_reload(
    cursor: Any,
    schema: str,
    staging: str,
    reload_id: str,
    snapshot: Snapshot,
    *,
    id_range: tuple[int | None, int | None] | None = None,
    interval: tuple[datetime, datetime] | None = None,
) -> None:
    """Record a reload's snapshot and the rows it covers (an id range, or an interval's ids),
    inside its publish transaction, before the target's rows are replaced."""
    by_ids = interval is not None
    params: dict[str, Any] = {
        "reload_id": reload_id,
        "xmin": snapshot.xmin,
        "xmax": snapshot.xmax,
        "lsn": snapshot.lsn,
        **{f"xip_{i}": xid for i, xid in enumerate(snapshot.xip)},
    }
    if by_ids:
        params["start"], params["end"] = interval
    else:
        low, high = id_range or (None, None)
        params["id_from"] = LOWEST_ID if low is None else low
        params["id_to"] = HIGHEST_ID if high is None else high
    for statement in render_statements(
        "redshift/record_reload.sql", schema=schema, staging=staging, by_ids=by_ids, xip=len(snapshot.xip)
    ):
        cursor.execute(statement, params if "%(" in statement else None)


def forget_reloads(cursor: Any, schema: str, *, applied_lsn: int | None = None) -> None:
    """Forget the reloads the applied LSN has passed (every one when `applied_lsn` is None: a
    full refresh, whose snapshots saw everything theirs did)."""
    for statement in render_statements("redshift/forget_reloads.sql", schema=schema, all=applied_lsn is None):
        cursor.execute(statement, {"applied_lsn": applied_lsn} if "%(" in statement else None)


BOOTSTRAPPING = "bootstrapping"


def claim_bootstrap(
    connection: Any, schema: str, run_id: str, should_claim: Callable[[SyncState | None], bool]
) -> SyncState | None:
    """Make `run_id` the one run bootstrapping the target, when `should_claim(state)` says so
    of the state read under the sync state's lock (it may raise to make the run wait); returns
    the claim, or the state found. The sync state's tables (and the schema) are created first
    if missing."""
    connection.autocommit = True
    cursor = connection.cursor()
    try:
        for statement in [f"create schema if not exists {schema}", *sync_state_statements(schema)]:
            _create_if_not_exists(cursor, statement)
    finally:
        cursor.close()
    connection.autocommit = False
    cursor = connection.cursor()
    cursor.paramstyle = "pyformat"
    try:
        for statement in render_statements("redshift/lock_sync_state.sql", schema=schema):
            cursor.execute(statement)
        cursor.execute(render_sql("redshift/select_sync_state.sql", schema=schema))
        state = _state(cursor.fetchone())
        if not should_claim(state):
            connection.rollback()
            return state
        for statement in render_statements("redshift/claim_bootstrap.sql", schema=schema):
            cursor.execute(statement, {"run_id": run_id} if "%(" in statement else None)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()
    return SyncState(capture=BOOTSTRAPPING, slot=None, applied_lsn=None, bootstrapped_by=run_id)


def _create_if_not_exists(cursor: Any, statement: str) -> None:
    """`create ... if not exists`, which two sessions creating the same object at once can
    still fail with a duplicate key in the catalog (23505) or "already exists": then the other
    one created it, and the statement, run again, does nothing."""
    try:
        cursor.execute(statement)
    except Exception as error:  # noqa: BLE001 - the driver's errors differ; the text says which
        if "23505" not in str(error) and "already exists" not in str(error):
            raise
        time.sleep(0.5)
        cursor.execute(statement)
