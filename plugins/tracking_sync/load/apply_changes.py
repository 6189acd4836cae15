"""Apply a batch of captured changes to the target, exactly once, in one transaction.

The batch's change rows (tracking_sync.capture.batch) were COPied into the run's table of
changes. In ONE transaction, after locking the target table: the changes a reload of their
row already saw are set aside, the last image of each id wins (an insert or update puts it,
a delete removes it), a TOASTed `query` an update did not send keeps its latest value, and
the sync state's applied LSN becomes the batch's upto LSN. Then the changes table is
dropped. The slot is advanced only after this commits (tracking_sync.capture.slot).

What it costs: `action` has no index on Redshift (nor on the stand-in's row store), so each
statement that reads it is a scan of the table (of the columns it names, on Redshift). The
apply reads it at most twice: the rows it replaces (their users, and the TOASTed texts
the batch did not send), not read when every id's first applied change is an insert (a
batch of late rows only), and the delete. With no reload waiting (capture_reloads empty,
the nightly's usual case) nothing is set aside and step 1 is skipped. Each statement's
time is logged at DEBUG (bench/bench_dag.py prints them).

Exactly once: the apply checks the applied LSN first. Already at or past the batch's upto
LSN (a retry after the commit), it changes nothing; not where the batch starts (another run
applied changes in between), it refuses, and the capture is read again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tracking_sync.capture.rows import TOASTABLE_COLUMNS, unchanged_flag
from tracking_sync.core.errors import CaptureBatchStale
from tracking_sync.core.lsn import format_lsn
from tracking_sync.core.plan import RunPlan
from tracking_sync.core.sql import render_sql, render_statements
from tracking_sync.core.tables import ACTION, NULL_MARKER_SQL, marker_flag
from tracking_sync.load.sync_state import (
    applied_lsn_for_update,
    bootstrapped_by,
    forget_reloads,
    write_sync_state,
)

log = logging.getLogger(__name__)


@dataclass
class AppliedChanges:
    """What a batch did to the target: its changes per kind, and what validation checks."""

    upto_lsn: int
    already_applied: bool = False
    changes: dict[str, int] = field(default_factory=dict)  # inserts, updates, deletes, superseded
    touched_users: list[int] = field(default_factory=list)  # old and new users of changed rows
    touched_ids: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "upto_lsn": self.upto_lsn,
            "already_applied": self.already_applied,
            "changes": self.changes,
            "inserted": self.changes.get("inserts", 0),
            "touched_users": self.touched_users,
            "touched_ids": self.touched_ids,
            "placed_outside_ids": [],
        }


def apply_statements(
    schema: str, staging: str, *, reloads: bool = True, reads_target: bool = True
) -> list[str]:
    """The apply's statements (include/sql/redshift/apply_action_changes.sql): `reloads`
    when capture_reloads holds a reload, `reads_target` when some id's first applied change
    is not an insert (its target row is read before it is replaced)."""
    return render_statements(
        "redshift/apply_action_changes.sql",
        schema=schema,
        staging=staging,
        columns=ACTION.column_names,
        toasted=[(name, marker_flag(name), unchanged_flag(name)) for name in TOASTABLE_COLUMNS],
        marker=NULL_MARKER_SQL,
        reloads=reloads,
        reads_target=reads_target,
    )


def apply_changes(
    connection: Any, plan: RunPlan, *, from_lsn: int, run_id: str, applied_at: datetime
) -> AppliedChanges:
    """Apply the run's table of changes (captured from `from_lsn` up to plan.upto_lsn)."""
    assert plan.upto_lsn is not None and plan.slot is not None
    schema, staging = plan.target_schema, plan.staging_table
    result = AppliedChanges(upto_lsn=plan.upto_lsn)
    cursor = _TimedCursor(connection.cursor())
    cursor.paramstyle = "pyformat"
    try:
        for statement in render_statements("redshift/lock_action.sql", schema=schema):
            cursor.execute(statement)
        applied = applied_lsn_for_update(cursor, schema)
        if applied is not None and applied >= plan.upto_lsn:
            cursor.execute(f"drop table if exists {schema}.{staging}")
            connection.commit()
            log.info(
                "the batch up to %s was applied before (a retry): nothing to do", format_lsn(plan.upto_lsn)
            )
            result.already_applied = True
            return result
        if applied != from_lsn:
            raise CaptureBatchStale(
                f"the batch was captured from {format_lsn(from_lsn)}, and the target's applied LSN is "
                f"now {'none' if applied is None else format_lsn(applied)}: another run changed the "
                f"target in between. Clear export_action of this run (with its downstream): it "
                "captures again from the target's applied LSN. Nothing was changed"
            )
        # No reload waiting (the nightly's usual case): no change can have been seen by one.
        cursor.execute(render_sql("redshift/count_capture_reloads.sql", schema=schema))
        reloads = int(cursor.fetchone()[0]) > 0
        statements = apply_statements(schema, staging, reloads=reloads)
        read_at = _first(statements, "create temp table replaced_rows")
        replace_at = _first(statements, "delete from")
        for statement in statements[:read_at]:
            cursor.execute(statement)
        cursor.execute("select count(*) from replaced_ids")
        reads_target = int(cursor.fetchone()[0]) > 0
        statements = apply_statements(schema, staging, reloads=reloads, reads_target=reads_target)
        for statement in statements[read_at:replace_at]:
            cursor.execute(statement)
        _read_what_the_batch_touches(cursor, schema, staging, result, reloads=reloads)
        for statement in statements[replace_at:]:
            cursor.execute(statement)
        write_sync_state(
            cursor,
            schema,
            capture="logical",
            slot=plan.slot,
            applied_lsn=plan.upto_lsn,
            applied_at=applied_at,
            bootstrapped_by=bootstrapped_by(cursor, schema),
            run_id=run_id,
        )
        forget_reloads(cursor, schema, applied_lsn=plan.upto_lsn)
        for statement in render_statements(
            "redshift/drop_applied_changes.sql",
            schema=schema,
            staging=staging,
            reloads=reloads,
            toastable=TOASTABLE_COLUMNS,
        ):
            cursor.execute(statement)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()
    log.info(
        "applied the changes up to %s: %s (touched %s ids of %s users)",
        format_lsn(plan.upto_lsn),
        ", ".join(f"{count} {kind}" for kind, count in result.changes.items()),
        len(result.touched_ids),
        len(result.touched_users),
    )
    return result


def _first(statements: list[str], beginning: str) -> int:
    return next(i for i, statement in enumerate(statements) if statement.lower().startswith(beginning))


def _read_what_the_batch_touches(
    cursor: Any, schema: str, staging: str, result: AppliedChanges, *, reloads: bool
) -> None:
    """Counts per kind, and the ids and users (the target's before, the batch's after) that
    validation compares, read before the target's rows are replaced."""
    cursor.execute(render_sql("redshift/select_change_counts.sql", schema=schema, staging=staging))
    kinds = {"I": "inserts", "U": "updates", "D": "deletes"}
    counts = {name: 0 for name in kinds.values()}
    for kind, count in cursor.fetchall():
        counts[kinds[str(kind).strip()]] = int(count)
    counts["superseded"] = 0
    if reloads:
        cursor.execute("select count(*) from superseded_changes")
        counts["superseded"] = int(cursor.fetchone()[0])
    result.changes = counts
    cursor.execute(render_sql("redshift/select_touched_users.sql", schema=schema, staging=staging))
    result.touched_users = sorted(int(row[0]) for row in cursor.fetchall())
    cursor.execute(f"select distinct id from {schema}.{staging} order by id")
    result.touched_ids = [int(row[0]) for row in cursor.fetchall()]


class _TimedCursor:
    """A cursor whose execute() logs each statement's time at DEBUG (where the apply's time goes)."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, statement: str, params: Any = None) -> None:
        started = time.perf_counter()
        self._cursor.execute(statement, params)
        log.debug("%.3f s: %s", time.perf_counter() - started, " ".join(statement.split())[:120])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_cursor":
            object.__setattr__(self, name, value)
        else:
            setattr(self._cursor, name, value)
