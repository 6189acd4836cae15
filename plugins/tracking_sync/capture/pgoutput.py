"""Decoder of pgoutput's logical replication protocol, version 1, into small typed records.

pgoutput (PostgreSQL's built-in output plugin) writes one binary message per row of
pg_logical_slot_peek_binary_changes(); decode_message() turns one into a record:

    B Begin      final_lsn (the commit record's LSN), commit time, xid (32-bit)
    C Commit     commit_lsn, end_lsn (the end of the commit record), commit time
    O Origin     the transaction was replayed from a replication origin
    R Relation   a table's OID, schema, name, replica identity and columns, sent before
                 the first change of the table in a decoding session (and again after
                 its definition changes)
    Y Type       a non-built-in type used by a column
    I Insert     the new tuple
    U Update     the old key (K) or old row (O, replica identity FULL) when sent, the new tuple
    D Delete     the old key (K) or old row (O)
    T Truncate   the relations truncated together, and CASCADE / RESTART IDENTITY
    M Message    pg_logical_emit_message() (sent only with the `messages` option)

A tuple is a tuple of column values in the relation's column order: bytes (the value's
text output form, in the session's client encoding), None for NULL, UNCHANGED for a
TOASTed value that the update left as it was (pgoutput does not send it again), or a
BinaryValue for a value sent in binary (only with the `binary` option).

Format: PostgreSQL 15 docs, "Logical Replication Message Formats"; the writer is
src/backend/replication/logical/proto.c. Pure Python and no database; it reads with
precompiled structs and slices and builds nothing it does not return. A capture batch
(tracking_sync.capture.batch) decodes every message but the changes with it, and reads
the changes' tuples straight into CSV fields (ActionImages.format_tuple), which its tests
hold to this decoder.
"""

from __future__ import annotations

import struct

from tracking_sync.capture.pgoutput_records import (
    UNCHANGED,
    Begin,
    BinaryValue,
    Commit,
    Delete,
    Insert,
    Message,
    Origin,
    Record,
    Relation,
    RelationColumn,
    Truncate,
    TupleData,
    Type,
    Update,
    Value,
)

BEGIN = ord("B")
COMMIT = ord("C")
ORIGIN = ord("O")
RELATION = ord("R")
TYPE = ord("Y")
INSERT = ord("I")
UPDATE = ord("U")
DELETE = ord("D")
TRUNCATE = ord("T")
MESSAGE = ord("M")

# Tuple data: what stands before each column value, and before each tuple of a change.
_NULL = ord("n")
_UNCHANGED_TOAST = ord("u")
_TEXT = ord("t")
_BINARY = ord("b")
_NEW_TUPLE = ord("N")
_OLD_KEY = ord("K")
_OLD_ROW = ord("O")

TRUNCATE_CASCADE = 1
TRUNCATE_RESTART_IDENTITY = 2


_BEGIN = struct.Struct(">QqI")
_COMMIT = struct.Struct(">BQQq")
_INT16 = struct.Struct(">H")
_INT32 = struct.Struct(">I")
_INT64 = struct.Struct(">Q")
_INT8_INT64 = struct.Struct(">BQ")
_COLUMN_TYPE = struct.Struct(">Ii")  # type OID, type modifier
_TRUNCATE_HEAD = struct.Struct(">IB")
_unpack_int32 = _INT32.unpack_from


class ProtocolError(ValueError):
    """A message that is not pgoutput protocol version 1 as documented."""


def _string(data: bytes, pos: int) -> tuple[str, int]:
    """A NUL-terminated string at `pos`, and the position after its NUL."""
    end = data.index(0, pos)
    return data[pos:end].decode(), end + 1


def decode_tuple(data: bytes, pos: int) -> tuple[TupleData, int]:
    """The TupleData at `pos`, and the position after it."""
    # The hot loop of a capture: locals only, the text case first (measured: about 0.2 us
    # per column; a slice per value is the cheapest way to a bytes object).
    unpack_int32 = _unpack_int32
    count = (data[pos] << 8) | data[pos + 1]
    pos += 2
    values: list[Value] = []
    append = values.append
    for _ in range(count):
        kind = data[pos]
        if kind == _TEXT:
            start = pos + 5
            pos = start + unpack_int32(data, pos + 1)[0]
            append(data[start:pos])
        elif kind == _NULL:
            append(None)
            pos += 1
        elif kind == _UNCHANGED_TOAST:
            append(UNCHANGED)
            pos += 1
        elif kind == _BINARY:
            start = pos + 5
            pos = start + unpack_int32(data, pos + 1)[0]
            append(BinaryValue(data[start:pos]))
        else:
            raise ProtocolError(f"unknown tuple column kind {chr(kind)!r} at byte {pos}")
    if pos > len(data):
        raise ProtocolError(f"tuple data runs past the end of the message ({pos} > {len(data)} bytes)")
    return tuple(values), pos


def _last_tuple(data: bytes, pos: int) -> TupleData:
    """The TupleData at `pos` that ends the message."""
    values, end = decode_tuple(data, pos)
    if end != len(data):
        raise ProtocolError(f"{len(data) - end} bytes after the last tuple of a {chr(data[0])!r} message")
    return values


def _expect(data: bytes, pos: int, expected: int, what: str) -> None:
    if data[pos] != expected:
        raise ProtocolError(f"expected {chr(expected)!r} ({what}) at byte {pos}, found {chr(data[pos])!r}")


def decode_begin(data: bytes) -> Begin:
    return Begin(*_BEGIN.unpack_from(data, 1))


def decode_commit(data: bytes) -> Commit:
    return Commit(*_COMMIT.unpack_from(data, 1))


def decode_origin(data: bytes) -> Origin:
    (origin_lsn,) = _INT64.unpack_from(data, 1)
    name, _ = _string(data, 9)
    return Origin(origin_lsn, name)


def decode_relation(data: bytes) -> Relation:
    (oid,) = _INT32.unpack_from(data, 1)
    namespace, pos = _string(data, 5)
    name, pos = _string(data, pos)
    replica_identity = chr(data[pos])
    (count,) = _INT16.unpack_from(data, pos + 1)
    pos += 3
    columns = []
    for _ in range(count):
        flags = data[pos]
        column_name, pos = _string(data, pos + 1)
        type_oid, type_modifier = _COLUMN_TYPE.unpack_from(data, pos)
        pos += 8
        columns.append(RelationColumn(column_name, type_oid, type_modifier, bool(flags & 1)))
    return Relation(oid, namespace, name, replica_identity, tuple(columns))


def decode_type(data: bytes) -> Type:
    (oid,) = _INT32.unpack_from(data, 1)
    namespace, pos = _string(data, 5)
    name, _ = _string(data, pos)
    return Type(oid, namespace, name)


def decode_insert(data: bytes) -> Insert:
    if data[5] != _NEW_TUPLE:
        _expect(data, 5, _NEW_TUPLE, "the new tuple of an insert")
    return Insert(_unpack_int32(data, 1)[0], _last_tuple(data, 6))


def decode_update(data: bytes) -> Update:
    (oid,) = _unpack_int32(data, 1)
    marker = data[5]
    old_kind = old = None
    pos = 5
    if marker == _OLD_KEY or marker == _OLD_ROW:
        old_kind = chr(marker)
        old, pos = decode_tuple(data, 6)
    if data[pos] != _NEW_TUPLE:
        _expect(data, pos, _NEW_TUPLE, "the new tuple of an update")
    return Update(oid, old_kind, old, _last_tuple(data, pos + 1))


def decode_delete(data: bytes) -> Delete:
    (oid,) = _unpack_int32(data, 1)
    marker = data[5]
    if marker != _OLD_KEY and marker != _OLD_ROW:
        raise ProtocolError(f"a delete carries its old key (K) or old row (O), not {chr(marker)!r}")
    return Delete(oid, chr(marker), _last_tuple(data, 6))


def decode_truncate(data: bytes) -> Truncate:
    count, options = _TRUNCATE_HEAD.unpack_from(data, 1)
    oids = struct.unpack_from(f">{count}I", data, 6)
    return Truncate(options, oids)


def decode_message_record(data: bytes) -> Message:
    flags, lsn = _INT8_INT64.unpack_from(data, 1)
    prefix, pos = _string(data, 10)
    (length,) = _INT32.unpack_from(data, pos)
    return Message(bool(flags & 1), lsn, prefix, bytes(data[pos + 4 : pos + 4 + length]))


DECODERS = {
    BEGIN: decode_begin,
    COMMIT: decode_commit,
    ORIGIN: decode_origin,
    RELATION: decode_relation,
    TYPE: decode_type,
    INSERT: decode_insert,
    UPDATE: decode_update,
    DELETE: decode_delete,
    TRUNCATE: decode_truncate,
    MESSAGE: decode_message_record,
}


def decode_message(data: bytes) -> Record:
    """One pgoutput message (the `data` of a pg_logical_slot_*_binary_changes row)."""
    if not data:
        raise ProtocolError("an empty message")
    try:
        decoder = DECODERS[data[0]]
    except KeyError:
        raise ProtocolError(
            f"unknown pgoutput message type {chr(data[0])!r}: the capture reads protocol version 1 "
            "(streamed and two-phase transactions are version 2 and later)"
        ) from None
    try:
        return decoder(data)
    except ProtocolError:
        raise
    except (struct.error, IndexError, ValueError) as error:  # ValueError: a string without its NUL
        raise ProtocolError(f"a malformed {chr(data[0])!r} message ({len(data)} bytes): {error}") from error
