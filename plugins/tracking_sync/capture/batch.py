"""A capture batch: the changes to action of the transactions in [applied_lsn, upto_lsn), read
from the slot and written as CSV change rows.

Which transactions: those whose commit record (the final_lsn of pgoutput's Begin message)
lies at or after applied_lsn (what the target already applied, from the target) and
before upto_lsn (fixed when the run was planned). Whole transactions outside the window
are skipped as they stream by, nothing buffered. After the target has applied the batch
and stored upto_lsn as its applied LSN, the slot is advanced to upto_lsn; if that advance
is lost, the next peek returns the applied transactions again, and the window skips them:
every change is applied exactly once.

The rows are written to `writer` (one write() per row, e.g. tracking_sync.extract.parts.PartWriter, which
cuts zstd parts between rows) as they are decoded, so memory stays flat however many
changes a batch has: the peek is read through a server-side cursor, `itersize` rows at a
time (the server itself keeps the peek's result in a tuplestore, spilled to disk past
work_mem).

The CSV dialect is export's (tracking_sync.extract.export), so the load reads change files with
the same COPY options: NULL is an unquoted \\N, every text is quoted (quotes doubled),
query travels with query_is_marker, action_time carries its +00 offset, booleans are t/f.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from tracking_sync.capture.errors import SlotAheadOfTarget, TruncateCaptured
from tracking_sync.capture.pgoutput import (
    BEGIN,
    COMMIT,
    DELETE,
    INSERT,
    RELATION,
    TRUNCATE,
    UPDATE,
    ProtocolError,
    decode_begin,
    decode_message,
    decode_relation,
    decode_truncate,
)
from tracking_sync.capture.rows import (
    FALSE,
    NEW_TUPLE,
    OLD_KEY,
    OLD_ROW,
    TRUE,
    UNPACK_INT32,
    ActionImages,
    RefusedRelation,
    action_images,
)
from tracking_sync.capture.slot import (
    DEFAULT_ITERSIZE,
    SOURCE_SCHEMA,
    peeked_changes,
    require_slot,
    wal_position,
)
from tracking_sync.core.lsn import format_lsn, widen_xid
from tracking_sync.core.tables import ACTION

# --- Touched ids: exact, in memory bounded by the id range, not by the changes. -----------


class TouchedIds:
    """The distinct ids a batch changed, as a sparse bitmap: 8 KiB per 65,536-id block that
    holds any, so ten million changes to recent rows take a few blocks, not a set of ints."""

    BLOCK_BITS = 16

    def __init__(self) -> None:
        self._blocks: dict[int, bytearray] = {}
        self.count = 0

    def add(self, id_: int) -> None:
        block_key, offset = id_ >> self.BLOCK_BITS, id_ & 0xFFFF
        block = self._blocks.get(block_key)
        if block is None:
            block = self._blocks[block_key] = bytearray(1 << (self.BLOCK_BITS - 3))
        byte, bit = offset >> 3, 1 << (offset & 7)
        if not block[byte] & bit:
            block[byte] |= bit
            self.count += 1

    def __len__(self) -> int:
        return self.count


# --- The batch. ---------------------------------------------------------------------------


class RowWriter(Protocol):
    def write(self, row: bytes) -> int: ...


@dataclass(frozen=True)
class BatchResult:
    applied_lsn: int
    upto_lsn: int
    inserts: int
    updates: int
    deletes: int
    transactions: int  # in the window, with or without changes to action
    skipped_transactions: int  # outside the window (already applied, or committed at/after upto)
    bytes: int  # of CSV written (uncompressed)
    touched_ids: int  # distinct ids inserted, updated or deleted

    @property
    def rows(self) -> int:
        return self.inserts + self.updates + self.deletes

    def summary(self) -> dict[str, Any]:
        return {
            "applied_lsn": format_lsn(self.applied_lsn),
            "upto_lsn": format_lsn(self.upto_lsn),
            "inserts": self.inserts,
            "updates": self.updates,
            "deletes": self.deletes,
            "rows": self.rows,
            "transactions": self.transactions,
            "skipped_transactions": self.skipped_transactions,
            "bytes": self.bytes,
            "touched_ids": self.touched_ids,
        }


def read_changes(
    connection: Any,
    slot: str,
    publication: str,
    applied_lsn: int,
    upto_lsn: int,
    writer: RowWriter,
    *,
    itersize: int = DEFAULT_ITERSIZE,
) -> BatchResult:
    """Write the change rows of the transactions committed in [applied_lsn, upto_lsn) to
    `writer`, one write() per row (columns: CHANGE_COLUMNS), in stream order.

    `connection` is an open psycopg2 connection to the source (a role with REPLICATION or
    rds_replication); the slot is peeked, not consumed. Raises SlotMissing / SlotLost when
    the slot cannot be read, SlotAheadOfTarget when it was advanced past applied_lsn,
    TruncateCaptured when action was truncated in the window, SourceTableChanged when
    action's columns changed.
    """
    if upto_lsn < applied_lsn:
        raise ValueError(
            f"upto_lsn {format_lsn(upto_lsn)} is before applied_lsn {format_lsn(applied_lsn)}: "
            "a run captures up to an LSN planned after the target's applied one"
        )
    status = require_slot(connection, slot)
    if status.confirmed_flush_lsn is not None and status.confirmed_flush_lsn > applied_lsn:
        raise SlotAheadOfTarget(
            f"replication slot {slot} was advanced to {format_lsn(status.confirmed_flush_lsn)}, past "
            f"the LSN the target applied, {format_lsn(applied_lsn)}: the changes in between are no "
            "longer in the slot (the target's applied LSN was reset, or the slot advanced by hand). "
            "Run the DAG with mode=full_refresh to reload action and start the capture anew"
        )
    next_xid = wal_position(connection).next_xid  # read after every batch xid was assigned
    with peeked_changes(connection, slot, upto_lsn, publication, name="capture", itersize=itersize) as rows:
        return _write_batch(rows, applied_lsn, upto_lsn, next_xid, writer)


def _write_batch(rows: Any, applied_lsn: int, upto_lsn: int, next_xid: int, writer: RowWriter) -> BatchResult:
    write = writer.write
    images: dict[int, ActionImages | RefusedRelation] = {}  # relation OID -> images, action's only
    touched = TouchedIds()
    add_touched = touched.add
    join = b",".join
    unpack_int32 = UNPACK_INT32
    inserts = updates = deletes = transactions = skipped = written = seq = 0
    in_window = False
    begin = None
    xid_lsn = b""  # this transaction's change_xid and change_commit_lsn fields

    # The hot loop: one pass per message, each row written as soon as it is made (measured
    # in bench/bench_capture.py: the formatting is inline rather than in helpers because a
    # Python call per change costs a good part of the server's own decoding time).
    for (message,) in rows:
        data = bytes(message)
        kind = data[0]
        if kind == INSERT or kind == UPDATE or kind == DELETE:
            if not in_window:
                continue
            image = images.get(unpack_int32(data, 1)[0])
            if image is None:
                continue  # another table of the publication
            tuple_kind = data[5]
            if kind == INSERT:
                if tuple_kind != NEW_TUPLE:
                    raise ProtocolError(f"an insert without its new tuple (N), found {chr(tuple_kind)!r}")
                fields, end, _ = image.format_tuple(data, 6)
                change, unchanged = b"I", FALSE
                inserts += 1
            elif kind == DELETE:
                if tuple_kind != OLD_KEY and tuple_kind != OLD_ROW:
                    raise ProtocolError(
                        f"a delete without its old key (K) or row (O), found {chr(tuple_kind)!r}"
                    )
                fields, end, _ = image.format_tuple(data, 6)
                change, unchanged = b"D", FALSE
                deletes += 1
            else:
                old = None
                pos = 5
                if tuple_kind == OLD_KEY or tuple_kind == OLD_ROW:
                    old, pos, _ = image.format_tuple(data, 6)
                if data[pos] != NEW_TUPLE:
                    raise ProtocolError(f"an update without its new tuple (N), found {chr(data[pos])!r}")
                fields, end, query_unsent = image.format_tuple(data, pos + 1)
                unchanged = FALSE
                if query_unsent:
                    if tuple_kind == OLD_ROW:  # REPLICA IDENTITY FULL: the old row has it
                        toastable = image.toastable_field
                        fields[toastable : toastable + 2] = old[toastable : toastable + 2]
                    else:
                        unchanged = TRUE
                if old is not None and old[image.id_field] != fields[image.id_field]:
                    # The key changed: the old id is gone, as if deleted.
                    seq += 1
                    line = b'%d,"D",%s%s,f\n' % (seq, xid_lsn, join(old))
                    write(line)
                    written += len(line)
                    add_touched(int(old[image.id_field]))
                    deletes += 1
                change = b"U"
                updates += 1
            if end != len(data):
                raise ProtocolError(
                    f"{len(data) - end} bytes after the last tuple of a {chr(kind)!r} message"
                )
            seq += 1
            line = b'%d,"%s",%s%s,%s\n' % (seq, change, xid_lsn, join(fields), unchanged)
            add_touched(int(fields[image.id_field]))
        elif kind == BEGIN:
            begin = decode_begin(data)
            in_window = applied_lsn <= begin.final_lsn < upto_lsn
            if in_window:
                transactions += 1
                xid_lsn = b"%d,%d," % (widen_xid(begin.xid, next_xid), begin.final_lsn)
            else:
                skipped += 1
            continue
        elif kind == COMMIT:
            continue
        elif kind == RELATION:
            # Sent once per relation per peek, inside whichever transaction first changes
            # it: read even in a skipped transaction.
            relation = decode_relation(data)
            if relation.namespace == SOURCE_SCHEMA and relation.name == ACTION.name:
                images[relation.oid] = action_images(relation)
            else:
                images.pop(relation.oid, None)
            continue
        elif kind == TRUNCATE:
            truncate = decode_truncate(data)
            if in_window and any(oid in images for oid in truncate.relation_oids):
                raise TruncateCaptured(
                    f"action was truncated on the source (a TRUNCATE committed at "
                    f"{format_lsn(begin.final_lsn)}): a truncate cannot be replayed as row changes, "
                    "so the capture stops here. Run the DAG with mode=full_refresh: it reloads "
                    "action whole and starts the capture anew"
                )
            continue
        else:
            decode_message(data)  # Origin, Type, Message: checked, nothing to write
            continue
        write(line)
        written += len(line)
    return BatchResult(
        applied_lsn=applied_lsn,
        upto_lsn=upto_lsn,
        inserts=inserts,
        updates=updates,
        deletes=deletes,
        transactions=transactions,
        skipped_transactions=skipped,
        bytes=written,
        touched_ids=len(touched),
    )
