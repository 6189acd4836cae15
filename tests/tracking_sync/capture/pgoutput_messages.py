"""pgoutput protocol version 1 messages built byte by byte, as proto.c writes them: the
decoder tests' data (the real server's are in the integration tests)."""

from __future__ import annotations

import struct

UNCHANGED_MARK = object()  # a 'u' column in tuple()
BINARY = "binary"


def string(text: str) -> bytes:
    return text.encode() + b"\x00"


def tuple_data(*values) -> bytes:
    """None -> 'n', UNCHANGED_MARK -> 'u', (BINARY, b) -> 'b', bytes/str -> 't'."""
    out = [struct.pack(">H", len(values))]
    for value in values:
        if value is None:
            out.append(b"n")
        elif value is UNCHANGED_MARK:
            out.append(b"u")
        elif isinstance(value, tuple) and value[0] == BINARY:
            out.append(b"b" + struct.pack(">I", len(value[1])) + value[1])
        else:
            raw = value.encode() if isinstance(value, str) else value
            out.append(b"t" + struct.pack(">I", len(raw)) + raw)
    return b"".join(out)


def begin(final_lsn: int, commit_time: int, xid: int) -> bytes:
    return b"B" + struct.pack(">QqI", final_lsn, commit_time, xid)


def commit(commit_lsn: int, end_lsn: int, commit_time: int, flags: int = 0) -> bytes:
    return b"C" + struct.pack(">BQQq", flags, commit_lsn, end_lsn, commit_time)


def origin(origin_lsn: int, name: str) -> bytes:
    return b"O" + struct.pack(">Q", origin_lsn) + string(name)


def relation(oid: int, namespace: str, name: str, identity: str, columns: list[tuple]) -> bytes:
    """columns: (name, type_oid, type_modifier, is_key)."""
    out = [b"R", struct.pack(">I", oid), string(namespace), string(name), identity.encode()]
    out.append(struct.pack(">H", len(columns)))
    for column_name, type_oid, modifier, is_key in columns:
        out += [bytes([1 if is_key else 0]), string(column_name), struct.pack(">Ii", type_oid, modifier)]
    return b"".join(out)


def type_message(oid: int, namespace: str, name: str) -> bytes:
    return b"Y" + struct.pack(">I", oid) + string(namespace) + string(name)


def insert(oid: int, *values) -> bytes:
    return b"I" + struct.pack(">I", oid) + b"N" + tuple_data(*values)


def update(oid: int, new: tuple, old: tuple | None = None, old_kind: str = "K") -> bytes:
    head = b"U" + struct.pack(">I", oid)
    if old is not None:
        head += old_kind.encode() + tuple_data(*old)
    return head + b"N" + tuple_data(*new)


def delete(oid: int, old: tuple, old_kind: str = "K") -> bytes:
    return b"D" + struct.pack(">I", oid) + old_kind.encode() + tuple_data(*old)


def truncate(options: int, *oids: int) -> bytes:
    return b"T" + struct.pack(">IB", len(oids), options) + b"".join(struct.pack(">I", oid) for oid in oids)


def message(transactional: bool, lsn: int, prefix: str, content: bytes) -> bytes:
    return (
        b"M"
        + struct.pack(">BQ", int(transactional), lsn)
        + string(prefix)
        + struct.pack(">I", len(content))
        + content
    )


COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">II", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)


def copy_tuple(message: bytes) -> bytes:
    """A tuple of the peek's binary COPY: one field, the message."""
    return struct.pack(">hi", 1, len(message)) + message


def copy_chunks(messages: list[bytes]) -> list[bytes]:
    """`COPY (peek) TO STDOUT (FORMAT binary)` as psycopg2 hands it to write(), one CopyData
    message per call: the header with the first tuple (copyto.c sends them together), a tuple
    each, the trailer alone."""
    tuples = [copy_tuple(message) for message in messages]
    if not tuples:
        return [COPY_HEADER + COPY_TRAILER]
    return [COPY_HEADER + tuples[0], *tuples[1:], COPY_TRAILER]
