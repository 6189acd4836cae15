"""The changes still pending in the slot: committed on the source at or after the target's
applied LSN, so not yet in the target; the next capture batch applies them.

Validation compares the target with the LIVE source, which keeps changing after a run's
batch (or a load's snapshot). A difference that such a change explains is not a failure:
the next batch applies the change and its validation checks exactly the ids and users it
touches (tracking_sync.validate.pending). This says which rows, users and days the pending
changes touch, reading the slot WITHOUT consuming it (peek), up to the source's flushed WAL:

    pending = read_pending_changes(connection, slot, after_lsn=state.applied_lsn)
    pending.ids       every id inserted, updated or deleted (the old id of a key change too)
    pending.old_ids   the ids updated or deleted: the target's rows with them are the old
                      images, whose user and day validate reads from the target (under the
                      default replica identity a delete carries only its id)
    pending.users     user_profile_id of every image the changes carry (the new images,
                      and the old rows under REPLICA IDENTITY FULL)
    pending.days      the UTC days of those images' action_time, ISO ('2025-03-02')

Which transactions: those whose commit record is at or after `after_lsn`, as a batch reads
them (tracking_sync.capture.batch), up to the flushed position once everything committed
before the call is flushed (slot.current_lsn): a change visible to a query that ran before
the call is in it.

Memory is bounded by `max_ids` distinct ids (two sets of ints, ~100 MB at the default one
million): past it the reading stops and `capped` says why; so does a TRUNCATE of action
(`truncated_at`), which the next run cannot apply. Pending changes that are incomplete
explain nothing. Only the three columns needed are taken from each message (the typed
decoder of tracking_sync.capture.pgoutput, no CSV).

`connection` is a psycopg2 connection to the source with REPLICATION (or rds_replication),
like the capture's; the slot must not be in use by another reader at the same time (a
capture run of the same target: PostgreSQL raises "is active for PID").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tracking_sync.capture.errors import SlotAheadOfTarget, SourceTableChanged
from tracking_sync.capture.pgoutput import (
    BEGIN,
    DELETE,
    INSERT,
    RELATION,
    TRUNCATE,
    UPDATE,
    Relation,
    TupleData,
    decode_begin,
    decode_delete,
    decode_insert,
    decode_relation,
    decode_truncate,
    decode_update,
)
from tracking_sync.capture.slot import (
    DEFAULT_ITERSIZE,
    PUBLICATION,
    SOURCE_SCHEMA,
    current_lsn,
    peeked_changes,
    require_slot,
)
from tracking_sync.core.lsn import format_lsn
from tracking_sync.core.tables import ACTION

MAX_PENDING_IDS = 1_000_000
# The date at the head of a timestamp's text in DateStyle ISO (not " BC", not infinity).
_ISO_DAY = re.compile(rb"^\d{4}-\d{2}-\d{2}(?:[ T]|$)")


@dataclass
class PendingChanges:
    """What the changes committed from `after_lsn` up to `upto_lsn` touch (see the module)."""

    slot: str
    after_lsn: int
    upto_lsn: int
    ids: set[int] = field(default_factory=set)
    old_ids: set[int] = field(default_factory=set)
    users: set[int] = field(default_factory=set)
    days: set[str] = field(default_factory=set)
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    transactions: int = 0  # in the window, with or without changes to action
    truncated_at: int | None = None  # commit LSN of a TRUNCATE of action in the window
    capped: str | None = None  # why the reading stopped before the end: the sets are incomplete

    @property
    def changes(self) -> int:
        return self.inserts + self.updates + self.deletes

    @property
    def complete(self) -> bool:
        """Every pending change was read: the sets can explain differences."""
        return self.capped is None and self.truncated_at is None

    def summary(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "after_lsn": format_lsn(self.after_lsn),
            "upto_lsn": format_lsn(self.upto_lsn),
            "inserts": self.inserts,
            "updates": self.updates,
            "deletes": self.deletes,
            "ids": len(self.ids),
            "users": len(self.users),
            "days": len(self.days),
            "transactions": self.transactions,
            "truncated_at": None if self.truncated_at is None else format_lsn(self.truncated_at),
            "capped": self.capped,
        }


class _Places:
    """Where id, user_profile_id and action_time sit in the tuples of one Relation of action."""

    def __init__(self, relation: Relation) -> None:
        names = [column.name for column in relation.columns]
        needed = ("id", "user_profile_id", ACTION.time_column)
        missing = [name for name in needed if name not in names]
        self.error = None
        if missing:
            self.error = SourceTableChanged(
                f"the source table {relation.namespace}.{relation.name} lacks {', '.join(missing)}, "
                "as the slot decodes it: which rows its pending changes touch cannot be said (the "
                "next capture run stops on it too, saying how to repair)"
            )
            return
        self.id, self.user, self.time = (names.index(name) for name in needed)


def read_pending_changes(
    connection: Any,
    slot: str,
    *,
    after_lsn: int,
    publication: str = PUBLICATION,
    upto_lsn: int | None = None,
    max_ids: int = MAX_PENDING_IDS,
    itersize: int = DEFAULT_ITERSIZE,
) -> PendingChanges:
    """The changes to action committed in [after_lsn, upto_lsn) (upto: the source's flushed
    WAL once everything committed before the call is flushed), peeked from the slot.

    Raises SlotMissing / SlotLost when the slot cannot be read, SlotAheadOfTarget when it
    was advanced past after_lsn (the changes in between are gone from it), SourceTableChanged
    when a pending change's Relation lacks a column read here."""
    if max_ids < 1:
        raise ValueError(f"max_ids must be at least 1, got {max_ids}")
    status = require_slot(connection, slot)
    if status.confirmed_flush_lsn is not None and status.confirmed_flush_lsn > after_lsn:
        raise SlotAheadOfTarget(
            f"replication slot {slot} was advanced to {format_lsn(status.confirmed_flush_lsn)}, past "
            f"the LSN the target applied, {format_lsn(after_lsn)}: the changes in between are no "
            "longer in the slot, so which are pending cannot be said (the next capture run stops "
            "on it too, saying how to repair)"
        )
    upto = max(after_lsn, current_lsn(connection) if upto_lsn is None else upto_lsn)
    pending = PendingChanges(slot=slot, after_lsn=after_lsn, upto_lsn=upto)
    with peeked_changes(connection, slot, upto, publication, name="pending", itersize=itersize) as rows:
        _collect(rows, pending, max_ids)
    return pending


def _collect(rows: Any, pending: PendingChanges, max_ids: int) -> None:
    places: dict[int, _Places] = {}  # relation OID -> where the columns are, action's only
    after, upto = pending.after_lsn, pending.upto_lsn
    in_window = False
    begin = None
    for (message,) in rows:
        data = bytes(message)
        kind = data[0]
        if kind == INSERT or kind == UPDATE or kind == DELETE:
            if not in_window:
                continue
            place = places.get(int.from_bytes(data[1:5], "big"))
            if place is None:
                continue  # another table of the publication
            if place.error is not None:
                raise place.error
            if kind == INSERT:
                _add(pending, place, decode_insert(data).new, old=False)
                pending.inserts += 1
            elif kind == UPDATE:
                update = decode_update(data)
                if update.old is not None:  # the key changed, or REPLICA IDENTITY FULL
                    _add(pending, place, update.old, old=True)
                _add(pending, place, update.new, old=True)  # the target holds its old image
                pending.updates += 1
            else:
                _add(pending, place, decode_delete(data).old, old=True)
                pending.deletes += 1
            if len(pending.ids) > max_ids:
                pending.capped = (
                    f"more than {max_ids:,} distinct ids are pending: read no further (memory), "
                    "so the pending changes explain no difference"
                )
                return
        elif kind == BEGIN:
            begin = decode_begin(data)
            in_window = after <= begin.final_lsn < upto
            pending.transactions += in_window
        elif kind == RELATION:
            # Sent once per relation per peek, in whichever transaction first changes it:
            # read even in a transaction outside the window.
            relation = decode_relation(data)
            if relation.namespace == SOURCE_SCHEMA and relation.name == ACTION.name:
                places[relation.oid] = _Places(relation)
            else:
                places.pop(relation.oid, None)
        elif kind == TRUNCATE:
            if in_window and any(oid in places for oid in decode_truncate(data).relation_oids):
                pending.truncated_at = begin.final_lsn
                return  # the next run stops on it and asks for a full refresh: nothing to explain
        # Commit, Origin, Type, Message: nothing to collect


def _add(pending: PendingChanges, place: _Places, values: TupleData, *, old: bool) -> None:
    """An image's id, and its user and day when it carries them (a key-only old image does not)."""
    key = values[place.id]
    if isinstance(key, bytes):
        row_id = int(key)
        pending.ids.add(row_id)
        if old:
            pending.old_ids.add(row_id)
    user = values[place.user]
    if isinstance(user, bytes):
        pending.users.add(int(user))
    moment = values[place.time]
    if isinstance(moment, bytes) and _ISO_DAY.match(moment) and not moment.endswith(b" BC"):
        pending.days.add(moment[:10].decode())
