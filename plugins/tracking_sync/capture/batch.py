"""A capture batch: the changes to action of the transactions in [applied_lsn, upto_lsn), read
from the slot and written as CSV change rows.

Which transactions: those whose commit record (the final_lsn of pgoutput's Begin message)
lies at or after applied_lsn (what the target already applied, from the target) and
before upto_lsn (fixed when the run was planned). Whole transactions outside the window
are skipped as they stream by, nothing buffered. After the target has applied the batch
and stored upto_lsn as its applied LSN, the slot is advanced to upto_lsn; if that advance
is lost, the next peek returns the applied transactions again, and the window skips them:
every change is applied exactly once.

The rows are written to `writer` as they are decoded (write_rows(data, count), whole rows
only; e.g. tracking_sync.extract.parts.PartWriter, which cuts zstd parts between calls), so
memory stays flat however many changes a batch has: the peek is read as a binary COPY
(tracking_sync.capture.slot.copy_changes), one message at a time straight into the decoder
(the server itself keeps the peek's result in a tuplestore, spilled to disk past work_mem).
The decoding is tracking_sync.capture.decoding's: compiled when built, else the Python
reference; this module handles what it hands back (Relation, Truncate and the rest), from
inside the COPY: an error raised there ends the COPY, and copy_changes' rollback leaves the
connection usable.

The CSV dialect is export's (tracking_sync.extract.export), so the load reads change files with
the same COPY options: NULL is an unquoted \\N, every text is quoted (quotes doubled),
query travels with query_is_marker, action_time carries its +00 offset, booleans are t/f.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tracking_sync.capture.decoding import FLUSH_BYTES, PythonDecoder, decoder_class, explain_refusal
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
    decode_message,
    decode_relation,
    decode_truncate,
)
from tracking_sync.capture.rows import action_images
from tracking_sync.capture.slot import SOURCE_SCHEMA, copy_changes, require_slot, wal_position
from tracking_sync.core.lsn import format_lsn
from tracking_sync.core.tables import ACTION

# --- The batch. ---------------------------------------------------------------------------


class RowWriter(Protocol):
    def write_rows(self, data: bytes, rows: int) -> None:
        """`data` holds `rows` whole change rows (a part is cut only between two calls)."""


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
) -> BatchResult:
    """Write the change rows of the transactions committed in [applied_lsn, upto_lsn) to
    `writer` through write_rows(data, count) (columns: CHANGE_COLUMNS), in stream order.

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
    return _write_batch(
        lambda sink: copy_changes(connection, slot, upto_lsn, publication, sink),
        applied_lsn,
        upto_lsn,
        next_xid,
        writer,
    )


def _write_batch(
    copy: Callable[[Any], None], applied_lsn: int, upto_lsn: int, next_xid: int, writer: RowWriter
) -> BatchResult:
    """copy(sink) writes the peek's binary COPY into sink.write(): the decoder
    (tracking_sync.capture.decoding) is that sink; it writes the changes and hands back what
    only hand_back, below, handles."""
    decoder_type = decoder_class()
    # A part is cut between two write_rows(): it overshoots part_bytes by one write at most.
    flush_bytes = max(1, min(FLUSH_BYTES, getattr(writer, "part_bytes", FLUSH_BYTES) // 8))
    images: dict[int, Any] = {}  # relation OID -> ActionImages | RefusedRelation, action's only

    def hand_back(data: bytes) -> None:
        if not data:
            raise ProtocolError("an empty pgoutput message in the peek: the slot's stream is corrupt")
        kind = data[0]
        if kind == RELATION:
            # Sent once per relation per peek, inside whichever transaction first changes
            # it: read even in a skipped transaction.
            relation = decode_relation(data)
            if relation.namespace == SOURCE_SCHEMA and relation.name == ACTION.name:
                images[relation.oid] = action_images(relation)
                decoder.set_image(relation.oid, images[relation.oid])
            else:
                images.pop(relation.oid, None)
                decoder.forget(relation.oid)
        elif kind == TRUNCATE:
            truncate = decode_truncate(data)
            if decoder.in_window and any(oid in images for oid in truncate.relation_oids):
                raise TruncateCaptured(
                    f"action was truncated on the source (a TRUNCATE committed at "
                    f"{format_lsn(decoder.final_lsn)}): a truncate cannot be replayed as row "
                    "changes, so the capture stops here. Run the DAG with mode=full_refresh: it "
                    "reloads action whole and starts the capture anew"
                )
        elif kind in (BEGIN, COMMIT, INSERT, UPDATE, DELETE):  # refused by the compiled decoder
            reference = PythonDecoder(applied_lsn, upto_lsn, next_xid, _nowhere, _nowhere)
            reference.images = dict(images)
            explain_refusal(reference, decoder.in_window, data)
        else:
            decode_message(data)  # Origin, Type, Message: checked, nothing to write

    decoder = decoder_type(
        applied_lsn, upto_lsn, next_xid, writer.write_rows, hand_back, flush_bytes=flush_bytes
    )
    copy(decoder)
    decoder.finish()
    return BatchResult(
        applied_lsn=applied_lsn,
        upto_lsn=upto_lsn,
        inserts=decoder.inserts,
        updates=decoder.updates,
        deletes=decoder.deletes,
        transactions=decoder.transactions,
        skipped_transactions=decoder.skipped,
        bytes=decoder.written,
        touched_ids=decoder.touched,
    )


def _nowhere(*_: Any) -> None:
    """write_rows and hand_back of a decoder that only explains a refusal."""
