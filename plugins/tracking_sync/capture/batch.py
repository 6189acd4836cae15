"""A capture batch: the changes to action of the transactions in [applied_lsn, upto_lsn), read
from the slot and written as CSV change rows.

Which transactions: those whose commit record (the final_lsn of pgoutput's Begin message)
lies at or after applied_lsn (what the target already applied, from the target) and
before upto_lsn (fixed when the run was planned). Whole transactions outside the window
are skipped as they stream by, nothing buffered. After the target has applied the batch
and stored upto_lsn as its applied LSN, the slot is advanced to upto_lsn; if that advance
is lost, the next peek returns the applied transactions again, and the window skips them:
every change is applied exactly once.

The rows are written to `writer` (one write() per row, e.g. export's PartWriter, which
cuts zstd parts between rows) as they are decoded, so memory stays flat however many
changes a batch has: the peek is read through a server-side cursor, `itersize` rows at a
time (the server itself keeps the peek's result in a tuplestore, spilled to disk past
work_mem).

The CSV dialect is export's (tracking_sync.export), so the load reads change files with
the same COPY options: NULL is an unquoted \\N, every text is quoted (quotes doubled),
query travels with query_is_marker, action_time carries its +00 offset, booleans are t/f.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from tracking_sync.capture.errors import SlotAheadOfTarget, SourceTableChanged, TruncateCaptured
from tracking_sync.capture.lsn import format_lsn, widen_xid
from tracking_sync.capture.pgoutput import (
    BEGIN,
    COMMIT,
    DELETE,
    INSERT,
    RELATION,
    TRUNCATE,
    UNCHANGED,
    UPDATE,
    ProtocolError,
    Relation,
    decode_begin,
    decode_delete,
    decode_insert,
    decode_message,
    decode_relation,
    decode_truncate,
    decode_update,
)
from tracking_sync.capture.slot import SOURCE_SCHEMA, require_slot, wal_position
from tracking_sync.sql_templates import render_sql
from tracking_sync.tables import ACTION, marker_flag

# --- The change rows: their columns, in file order (the one place they are defined). -----


@dataclass(frozen=True)
class ChangeColumn:
    name: str
    redshift_type: str


# Columns whose TOASTed value an update can leave unsent ('u'): each travels with a
# <name>_unchanged flag, true when the value was not sent (then the value is \N, and the
# target keeps the one it has, or the latest earlier one of the batch).
TOASTABLE_COLUMNS = ("query",)


def unchanged_flag(name: str) -> str:
    return f"{name}_unchanged"


CHANGE_COLUMNS: tuple[ChangeColumn, ...] = (
    ChangeColumn("change_seq", "bigint"),  # 1, 2, ... in stream order through the batch
    ChangeColumn("change_kind", "char(1)"),  # I, U, D
    ChangeColumn("change_xid", "bigint"),  # the transaction's 64-bit xid8
    ChangeColumn("change_commit_lsn", "bigint"),  # its commit record's LSN (Begin.final_lsn)
    # action's file columns as export writes them (every one nullable here: a delete
    # carries only the key, unless the replica identity is FULL).
    *(ChangeColumn(column.name, column.redshift_type) for column in ACTION.file_columns),
    *(ChangeColumn(unchanged_flag(name), "boolean") for name in TOASTABLE_COLUMNS),
)
CHANGE_COLUMN_NAMES = tuple(column.name for column in CHANGE_COLUMNS)

# --- Formatting one image of action into its CSV fields. ----------------------------------

NULL = b"\\N"
TRUE, FALSE = b"t", b"f"
TIMESTAMP_OID = 1114  # timestamp without time zone: the source's action_time holds UTC
TIMESTAMPTZ_OID = 1184  # timestamptz: printed with +00 in a session with TimeZone UTC
UTC_OFFSET = b"+00"
_ID_COLUMN = "id"


def _naive_utc(value: bytes) -> bytes:
    """A timestamp without time zone holding UTC, as export writes it (at time zone 'UTC')."""
    if value[-3:] == b" BC":
        return value[:-3] + UTC_OFFSET + b" BC"
    if value[:1].isdigit():
        return value + UTC_OFFSET
    return value  # infinity, -infinity: no offset, as timestamptz prints them


class ActionImages:
    """Turns tuples of the source's action (pgoutput's column order, from its Relation
    message) into the action fields of a change row (tables.ACTION's file order).

    Columns are matched by name: a column the pipeline needs that the source lacks, or a
    column the pipeline does not know, stops the capture (SourceTableChanged).
    """

    def __init__(self, relation: Relation) -> None:
        source = {column.name: position for position, column in enumerate(relation.columns)}
        needed = ACTION.column_names
        missing = [name for name in needed if name not in source]
        unknown = [name for name in source if name not in needed]
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"lacks {', '.join(missing)}")
            if unknown:
                problems.append(f"has new column(s) {', '.join(unknown)}")
            raise SourceTableChanged(
                f"the source table {relation.namespace}.{relation.name} {' and '.join(problems)}, "
                "as the slot decodes it: the capture moves exactly the columns of "
                "tracking_sync.tables.ACTION. Change ACTION (and the target table) to match the "
                "source, then run the DAG with mode=full_refresh so the target takes every row "
                "in the new shape"
            )
        if not relation.columns[source[_ID_COLUMN]].is_key:
            identity = {"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "USING INDEX"}
            raise SourceTableChanged(
                f"the source table {relation.namespace}.{relation.name} has replica identity "
                f"{identity.get(relation.replica_identity, relation.replica_identity)} without "
                f"{_ID_COLUMN}: its deletes would not say which row went. Give it a primary key on "
                f"{_ID_COLUMN} and REPLICA IDENTITY DEFAULT (tracking_sync.capture.preflight says "
                "how), then run the DAG with mode=full_refresh"
            )
        self.replica_identity = relation.replica_identity
        self.order = [source[name] for name in needed]
        self.in_order = self.order == list(range(len(needed)))  # the usual case: no reordering
        self.id_position = source[_ID_COLUMN]
        self.text = [i for i, column in enumerate(ACTION.columns) if column.is_text]
        flagged = [i for i, column in enumerate(ACTION.columns) if column.travels_with_null_flag]
        # The file order puts each marker flag right after its column: insert from the back.
        self.flag_slots = [i + 1 for i in reversed(flagged)]
        self.flagged_backwards = list(reversed(flagged))
        assert [marker_flag(ACTION.columns[i].name) for i in flagged] == [
            name for name in CHANGE_COLUMN_NAMES if name.endswith("_is_marker")
        ]
        (toastable,) = TOASTABLE_COLUMNS  # one today: the rows carry one unchanged flag
        self.toastable = needed.index(toastable)
        self.toastable_source = source[toastable]
        time_column = ACTION.time_column
        time_type = relation.columns[source[time_column]].type_oid
        if time_type not in (TIMESTAMP_OID, TIMESTAMPTZ_OID):
            raise SourceTableChanged(
                f"the source's {relation.name}.{time_column} has type OID {time_type}, not "
                "timestamp or timestamptz: change tracking_sync.tables.ACTION and the capture's "
                "formatting to match, then run the DAG with mode=full_refresh"
            )
        self.naive_time = needed.index(time_column) if time_type == TIMESTAMP_OID else None

    def fields(self, values: tuple) -> list[bytes]:
        """The action fields of an image that has every value (an insert's, a delete's)."""
        fields = list(values) if self.in_order else [values[position] for position in self.order]
        flags = [FALSE if fields[index] != NULL else TRUE for index in self.flagged_backwards]
        for index in self.text:
            value = fields[index]
            if value is not None:
                fields[index] = b'"' + value.replace(b'"', b'""') + b'"'
        naive_time = self.naive_time
        if naive_time is not None and fields[naive_time] is not None:
            fields[naive_time] = _naive_utc(fields[naive_time])
        fields = [NULL if value is None else value for value in fields]
        for slot, flag in zip(self.flag_slots, flags):
            fields.insert(slot, flag)
        return fields

    def new_fields(self, new: tuple, old: tuple | None) -> tuple[list[bytes], bytes]:
        """The action fields of an update's new image, and its unchanged flag (TRUE when
        pgoutput left query unsent and no old row had it). The unsent value is taken from
        the old row (sent under REPLICA IDENTITY FULL) when it is there."""
        if UNCHANGED not in new:
            return self.fields(new), FALSE
        values = list(new)
        unchanged = FALSE
        position = self.toastable_source
        if values[position] is UNCHANGED:
            if old is not None and old[position] is not None and old[position] is not UNCHANGED:
                values[position] = old[position]
            else:
                values[position] = None
                unchanged = TRUE
        if UNCHANGED in values:
            name = ACTION.column_names[self.order.index(values.index(UNCHANGED))]
            raise ProtocolError(f"pgoutput left {name} unsent (unchanged TOAST): only query can be")
        return self.fields(tuple(values)), unchanged


class RefusedRelation:
    """A Relation of action that the capture cannot move: its error is raised when a change
    of it is in the window, not when it is announced (a skipped transaction may carry the
    Relation of a shape long since fixed)."""

    def __init__(self, error: SourceTableChanged) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        raise self.error


def action_images(relation: Relation) -> ActionImages | RefusedRelation:
    try:
        return ActionImages(relation)
    except SourceTableChanged as error:
        return RefusedRelation(error)


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


OBJECT_NOT_IN_PREREQUISITE_STATE = "55000"  # "can no longer get changes from replication slot"
DEFAULT_ITERSIZE = 1000  # rows per FETCH; a row holds one change, up to ~130 KiB with old image


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
    with connection.cursor() as cursor:
        # pgoutput prints values with the session's output settings and client encoding.
        cursor.execute("set client_encoding to 'UTF8'")
        cursor.execute("set timezone to 'UTC'")
        cursor.execute("set datestyle to 'ISO, YMD'")
    try:
        with connection.cursor(name=f"capture_{slot}") as cursor:
            cursor.itersize = itersize
            cursor.execute(
                render_sql("postgres/capture/peek_changes.sql"),
                {"slot": slot, "upto_lsn": format_lsn(upto_lsn), "publication": publication},
            )
            return _write_batch(cursor, applied_lsn, upto_lsn, next_xid, writer)
    except Exception as error:
        # Invalidated between the status check and the peek (a checkpoint in between).
        if getattr(error, "pgcode", None) == OBJECT_NOT_IN_PREREQUISITE_STATE and "no longer" in str(error):
            connection.rollback()
            require_slot(connection, slot)  # raises SlotLost, with the fix
        raise
    finally:
        connection.rollback()  # read-only; leave no transaction (nor the settings) behind


def _write_batch(rows: Any, applied_lsn: int, upto_lsn: int, next_xid: int, writer: RowWriter) -> BatchResult:
    write = writer.write
    images: dict[int, ActionImages | RefusedRelation] = {}  # relation OID -> images, action's only
    touched = TouchedIds()
    add_touched = touched.add
    join = b",".join
    inserts = updates = deletes = transactions = skipped = written = seq = 0
    in_window = False
    begin = None
    xid_lsn = b""  # this transaction's change_xid and change_commit_lsn fields

    # The hot loop: one pass per message, each row written as soon as it is made (measured
    # in bench/bench_capture.py; the formatting is inline rather than in helpers because a
    # Python call per change costs a tenth of the server's decoding time).
    for (message,) in rows:
        data = bytes(message)
        kind = data[0]
        if kind == INSERT:
            if not in_window:
                continue
            insert = decode_insert(data)
            image = images.get(insert.relation_oid)
            if image is None:
                continue
            seq += 1
            line = b'%d,"I",%s%s,f\n' % (seq, xid_lsn, join(image.fields(insert.new)))
            add_touched(int(insert.new[image.id_position]))
            inserts += 1
        elif kind == UPDATE:
            if not in_window:
                continue
            update = decode_update(data)
            image = images.get(update.relation_oid)
            if image is None:
                continue
            new_id = int(update.new[image.id_position])
            add_touched(new_id)
            old = update.old
            if old is not None and int(old[image.id_position]) != new_id:
                # The key changed: the old id is gone, as if deleted.
                seq += 1
                line = b'%d,"D",%s%s,f\n' % (seq, xid_lsn, join(image.fields(old)))
                add_touched(int(old[image.id_position]))
                deletes += 1
                write(line)
                written += len(line)
            fields, unchanged = image.new_fields(update.new, old if update.old_kind == "O" else None)
            seq += 1
            line = b'%d,"U",%s%s,%s\n' % (seq, xid_lsn, join(fields), unchanged)
            updates += 1
        elif kind == DELETE:
            if not in_window:
                continue
            delete = decode_delete(data)
            image = images.get(delete.relation_oid)
            if image is None:
                continue
            seq += 1
            line = b'%d,"D",%s%s,f\n' % (seq, xid_lsn, join(image.fields(delete.old)))
            add_touched(int(delete.old[image.id_position]))
            deletes += 1
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
