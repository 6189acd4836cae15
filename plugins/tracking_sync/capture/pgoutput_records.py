"""The records pgoutput's messages decode into (tracking_sync.capture.pgoutput): one small typed
tuple per message kind, and the values of a tuple (bytes, None, UNCHANGED, BinaryValue)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class _Unchanged:
    """The 'u' marker: an unchanged TOASTed value that pgoutput did not send."""

    _instance: _Unchanged | None = None

    def __new__(cls) -> _Unchanged:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED"

    def __reduce__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()


class BinaryValue(bytes):
    """A column value sent in the type's binary form ('b'), not its text form."""


Value = bytes | None | _Unchanged
TupleData = tuple[Value, ...]


def pg_time(microseconds: int) -> datetime:
    """A protocol timestamp (microseconds since 2000-01-01 UTC) as an aware datetime."""
    return POSTGRES_EPOCH + timedelta(microseconds=microseconds)


class Begin(NamedTuple):
    final_lsn: int  # the LSN of the transaction's commit record
    commit_time: int  # microseconds since 2000-01-01 UTC (pg_time)
    xid: int  # 32-bit; tracking_sync.core.lsn.widen_xid makes it an xid8


class Commit(NamedTuple):
    flags: int
    commit_lsn: int  # the same LSN as Begin.final_lsn
    end_lsn: int  # the end of the commit record
    commit_time: int


class Origin(NamedTuple):
    origin_lsn: int  # the commit's LSN on the origin server
    name: str


class RelationColumn(NamedTuple):
    name: str
    type_oid: int
    type_modifier: int
    is_key: bool  # part of the replica identity (every column under FULL)


class Relation(NamedTuple):
    oid: int
    namespace: str  # '' for pg_catalog
    name: str
    replica_identity: str  # 'd' default, 'n' nothing, 'f' full, 'i' index
    columns: tuple[RelationColumn, ...]


class Type(NamedTuple):
    oid: int
    namespace: str
    name: str


class Insert(NamedTuple):
    relation_oid: int
    new: TupleData


class Update(NamedTuple):
    relation_oid: int
    old_kind: str | None  # 'K' old key, 'O' old row (FULL), None: the key did not change
    old: TupleData | None
    new: TupleData


class Delete(NamedTuple):
    relation_oid: int
    old_kind: str  # 'K' or 'O'
    old: TupleData


class Truncate(NamedTuple):
    options: int  # TRUNCATE_CASCADE | TRUNCATE_RESTART_IDENTITY
    relation_oids: tuple[int, ...]


class Message(NamedTuple):
    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Record = Begin | Commit | Origin | Relation | Type | Insert | Update | Delete | Truncate | Message
