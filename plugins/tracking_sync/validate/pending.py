"""Differences a live source explains: changes committed after the run's batch, still pending
in the capture's slot, are not failures.

Validation compares the target with the LIVE source. With logical capture a change committed
on the source at or after the target's applied LSN is in the source and not yet in the
target: the next capture batch applies it, and that batch's validation compares exactly the
ids and users it touches (rows_changed_by_the_batch, scope "users"). So a difference such a
change explains is reported as pending, and the validation passes; any other fails as before.

    note = explain_by_pending(report, slot=..., after="this run's batch", capture_conn=...,
                              target_conn=..., target_schema=...)

The rule, for a failed report, over what its failed checks and its row drill-down name:
    users   each differing user (a per-user check) is the user of an image a pending change
            carries, or of a target row a pending change updates or deletes
    days    each differing day (a per-day check) is the day of such an image or target row
    ids     each differing id (the checks by id, the row drill-down) is a pending id
    counts  a row-count difference of action is at most the number of pending ids
Not explained, so failed as today: a check that names more keys than it keeps (over
DIFFERING_KEYS users or ids), a check of another shape (action_type's count), a pending
TRUNCATE of action, more than MAX_PENDING_IDS pending ids, a target whose applied LSN is not
of this slot, a slot that cannot be read. A report naming the TIMESTAMP cause is left as it
is: no change explains a column type.

The target rows of the updated and deleted ids (their old user and day) are read only when
the images in the slot leave a differing user or day unexplained.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracking_sync.capture.pending import MAX_PENDING_IDS, PendingChanges, read_pending_changes
from tracking_sync.core.lsn import format_lsn
from tracking_sync.core.sql import render_sql
from tracking_sync.load.sync_state import read_sync_state
from tracking_sync.validate.compare import CheckResult
from tracking_sync.validate.diagnosis import TIMESTAMP_HINT
from tracking_sync.validate.drilldown import DrillDown
from tracking_sync.validate.parity import checked_integers, quote_identifier
from tracking_sync.validate.pending_note import PendingNote
from tracking_sync.validate.report import ValidationReport

log = logging.getLogger(__name__)

# The row counts of action (table_row_counts' keys in each scope); action_type is moved whole
# each run and never pending.
ACTION_COUNTS = frozenset({"action", "action_of_interval_users", "action_of_listed_users"})
ROWS = "rows that differ"  # the row drill-down, named as the report prints it
SAMPLE = 5  # ids, users and days named in the note
PLACES_PER_QUERY = 10_000


@dataclass
class Differences:
    """What one failed check (or the row drill-down) names, by kind."""

    name: str
    users: set[int] = field(default_factory=set)
    days: set[str] = field(default_factory=set)
    ids: set[int] = field(default_factory=set)
    counts: list[tuple[str, int]] = field(default_factory=list)  # (table, |target - source|)
    unlisted: list[str] = field(default_factory=list)  # what no change can be matched to


def differences_of(check: CheckResult) -> Differences:
    """The users, days, ids or counts a failed check names; what it cannot list, said."""
    found = Differences(check.name)
    count = check.differing + check.missing_in_target + check.missing_in_source
    keys = list(check.keys)
    if keys in (["user_profile_id"], ["id"]):
        named = {int(key[0]) for key in check.differing_keys}
        if count > len(named):
            found.unlisted.append(f"{check.name}: {count} {keys[0]} differ and {len(named)} are kept")
        if keys == ["id"]:
            found.ids = named
        else:
            found.users = named
    elif keys == ["table_name"]:
        deltas = {str(d.key[0]): d.delta for d in check.top_differences}
        if check.differing > len(deltas) or check.missing_in_target or check.missing_in_source:
            found.unlisted.append(f"{check.name}: a table is counted on one side only")
        for table, delta in sorted(deltas.items()):
            if table in ACTION_COUNTS and isinstance(delta, (int, float)):
                found.counts.append((table, int(abs(delta))))
            else:
                found.unlisted.append(f"{check.name}: {table} differs by {delta}, not a captured count")
    elif check.days:
        found.days = set(check.days)  # a day-keyed check keeps every differing day
    else:
        found.unlisted.append(f"{check.name}: keyed by {', '.join(keys)}, which no change names")
    return found


def differences_of_rows(rows: DrillDown) -> Differences:
    """The ids the row drill-down found (what it did not reach is left to the checks)."""
    return Differences(ROWS, ids=set(rows.row_ids))


def explain_by_pending(
    report: ValidationReport,
    *,
    slot: str,
    after: str,
    capture_conn: Any,
    target_conn: Any,
    target_schema: str,
    max_ids: int = MAX_PENDING_IDS,
    read: Callable[..., PendingChanges] = read_pending_changes,
) -> PendingNote | None:
    """Match a failed report's differences against the changes pending in `slot` after the
    target's applied LSN; set `report.pending` (and return it). Every difference explained:
    the report passes, its repair and days to backfill cleared; otherwise the note says
    which were pending and which not, in the diagnosis too when some were. None (nothing
    done) when the report passed or names the TIMESTAMP cause."""
    if report.passed or any(TIMESTAMP_HINT in hint for hint in report.diagnosis):
        return None
    note = PendingNote(slot=slot, after=after)
    report.pending = note
    state = read_sync_state(target_conn, target_schema)
    if state is None or state.applied_lsn is None or state.slot != slot:
        note.unexplained.append(
            f"the target {target_schema} has no applied LSN of slot {slot}, so which changes are "
            "pending cannot be said"
        )
        report.diagnosis.append(note.line())
        return note
    note.after_lsn = format_lsn(state.applied_lsn)
    try:
        pending = read(capture_conn, slot, after_lsn=state.applied_lsn, max_ids=max_ids)
        note.changes = pending.summary()
        if pending.truncated_at is not None:
            note.unexplained.append(
                f"a TRUNCATE of action committed at {format_lsn(pending.truncated_at)} is pending: "
                "the next run stops on it (mode=full_refresh reloads action)"
            )
        elif pending.capped is not None:
            note.unexplained.append(pending.capped)
        else:
            differences = [differences_of(check) for check in report.failed_checks]
            if report.rows is not None:
                differences.append(differences_of_rows(report.rows))
            match(note, differences, pending, lambda ids: target_places(target_conn, target_schema, ids))
    except Exception as error:  # noqa: BLE001 - reported; the failed verdict stands
        log.exception("the changes pending in slot %s could not be matched", slot)
        note.explained = False
        note.unexplained.append(f"the pending changes could not be read: {type(error).__name__}: {error}")
        report.diagnosis.append(note.line())
        return note
    if note.explained:
        report.days_to_backfill, report.diagnosis, report.repair = [], [], []
    elif note.explains_some or note.changes.get("truncated_at") or note.changes.get("capped"):
        report.diagnosis.append(note.line())
    return note


def match(
    note: PendingNote,
    differences: Sequence[Differences],
    pending: PendingChanges,
    places: Callable[[Iterable[int]], tuple[set[int], set[str]]],
) -> None:
    """Fill the note from the differences and the pending changes (the rule of the module).
    `places(ids)` gives the users and days of the target's rows with those ids."""
    users, days = set(pending.users), set(pending.days)
    named_users = set().union(*(d.users for d in differences))
    named_days = set().union(*(d.days for d in differences))
    if (named_users - users or named_days - days) and pending.old_ids:
        old_users, old_days = places(sorted(pending.old_ids))
        users |= old_users
        days |= old_days
    explained_ids: set[int] = set()
    explained_users: set[int] = set()
    explained_days: set[str] = set()
    for found in differences:
        lines = list(found.unlisted)
        lines += _unmatched(found.name, "user_profile_id", found.users - users)
        lines += _unmatched(found.name, "day", found.days - days)
        lines += _unmatched(found.name, "id", found.ids - pending.ids)
        for table, delta in found.counts:
            if delta > len(pending.ids):
                lines.append(
                    f"{found.name}: {table} differs by {delta} rows, more than the {len(pending.ids)} "
                    "pending ids"
                )
        explained_users |= found.users & users
        explained_days |= found.days & days
        explained_ids |= found.ids & pending.ids
        note.unexplained += lines
        if not lines and found.name != ROWS:
            note.pending_checks.append(found.name)
    note.rows, note.users, note.days = len(explained_ids), len(explained_users), len(explained_days)
    note.sample_ids = sorted(explained_ids)[:SAMPLE]
    note.sample_users = sorted(explained_users)[:SAMPLE]
    note.sample_days = sorted(explained_days)[:SAMPLE]
    note.explained = bool(differences) and not note.unexplained


def _unmatched(name: str, what: str, keys: set[Any]) -> list[str]:
    if not keys:
        return []
    shown = ", ".join(str(key) for key in sorted(keys)[:SAMPLE])
    more = f" and {len(keys) - SAMPLE} more" if len(keys) > SAMPLE else ""
    return [f"{name}: {what} {shown}{more} with no pending change"]


def target_places(target_conn: Any, target_schema: str, ids: Iterable[int]) -> tuple[set[int], set[str]]:
    """The users and UTC days of the target's rows with these ids, PLACES_PER_QUERY at a time."""
    schema = quote_identifier(target_schema)
    ids = checked_integers(ids, "row id")
    users: set[int] = set()
    days: set[str] = set()
    cursor = target_conn.cursor()
    try:
        cursor.execute("set timezone to 'UTC'")
        for start in range(0, len(ids), PLACES_PER_QUERY):
            chunk = ids[start : start + PLACES_PER_QUERY]
            cursor.execute(render_sql("redshift/select_action_places.sql", schema=schema, ids=chunk))
            for _, user, day in cursor.fetchall():
                if user is not None:
                    users.add(int(user))
                if day is not None:
                    days.add(day.isoformat() if hasattr(day, "isoformat") else str(day)[:10])
    finally:
        cursor.close()
        target_conn.rollback()
    return users, days
