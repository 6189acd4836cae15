"""Change rows: their columns (the one place they are defined), and one image of the source's
action as the CSV fields of a change row, in export's dialect (tracking_sync.extract.export):
NULL is an unquoted \\N, every text quoted (quotes doubled), query travels with
query_is_marker, action_time carries its +00 offset, booleans are t/f.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from tracking_sync.capture.errors import SourceTableChanged
from tracking_sync.capture.pgoutput import ProtocolError, Relation
from tracking_sync.core.tables import ACTION, marker_flag

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
# The bytes of pgoutput's tuple data that format_tuple reads (tracking_sync.capture.pgoutput).
_TEXT_VALUE, _NULL_VALUE, _UNCHANGED_VALUE = ord("t"), ord("n"), ord("u")
NEW_TUPLE, OLD_KEY, OLD_ROW = ord("N"), ord("K"), ord("O")
UNPACK_INT32 = struct.Struct(">I").unpack_from


def _naive_utc(value: bytes) -> bytes:
    """A timestamp without time zone holding UTC, as export writes it (at time zone 'UTC')."""
    if value[-1] != 67 and 48 <= value[0] <= 57:  # the usual case: digits first, no " BC"
        return value + UTC_OFFSET
    if value[-3:] == b" BC":
        return value[:-3] + UTC_OFFSET + b" BC"
    if value[:1].isdigit():
        return value + UTC_OFFSET
    return value  # infinity, -infinity: no offset, as timestamptz prints them


# How a column's text becomes its CSV field (ActionImages.format_tuple; _decode.c reads the
# same numbers from ActionImages.plan, with template, id_field and toastable_field).
_RAW, _TEXT, _FLAGGED_TEXT, _NAIVE_TIME = range(4)


class ActionImages:
    """Turns tuples of the source's action (pgoutput's column order, from its Relation
    message) into the action fields of a change row (tables.ACTION's file order).

    Columns are matched by name: a column the pipeline needs that the source lacks, or a
    column the pipeline does not know, stops the capture (SourceTableChanged); so does a
    replica identity that does not include id.

    format_tuple reads a TupleData straight from the message into CSV fields, without the
    typed records of tracking_sync.capture.pgoutput: on the hot path that cuts the
    client's CPU per change by a third (100,000 mixed changes: 2.8 us instead of 4.2,
    written to no file). The tests hold it to the decoder's reading of the same messages. It
    is the Python decoder's (tracking_sync.capture.decoding); the compiled one does the same
    in C from this object's plan.
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
                "tracking_sync.core.tables.ACTION. Change ACTION (and the target table) to match the "
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
        time_column = ACTION.time_column
        time_type = relation.columns[source[time_column]].type_oid
        if time_type not in (TIMESTAMP_OID, TIMESTAMPTZ_OID):
            raise SourceTableChanged(
                f"the source's {relation.name}.{time_column} has type OID {time_type}, not "
                "timestamp or timestamptz: change tracking_sync.core.tables.ACTION and the capture's "
                "formatting to match, then run the DAG with mode=full_refresh"
            )
        file_names = [column.name for column in ACTION.file_columns]
        by_name = {column.name: column for column in ACTION.columns}
        plan = []  # per source column: (its field's index in the file order, how it is written)
        for column in relation.columns:
            spec = by_name[column.name]
            if spec.travels_with_null_flag:
                if (
                    not spec.is_text
                    or file_names.index(marker_flag(column.name)) != file_names.index(column.name) + 1
                ):
                    raise AssertionError(f"{column.name}: a flagged column is text, its flag right after it")
                kind = _FLAGGED_TEXT
            elif spec.is_text:
                kind = _TEXT
            elif column.name == time_column and time_type == TIMESTAMP_OID:
                kind = _NAIVE_TIME
            else:
                kind = _RAW
            plan.append((file_names.index(column.name), kind))
        self.plan = tuple(plan)
        self.columns = len(plan)
        self.replica_identity = relation.replica_identity
        self.id_field = file_names.index(_ID_COLUMN)
        (toastable,) = TOASTABLE_COLUMNS  # one today: the rows carry one unchanged flag
        self.toastable_field = file_names.index(toastable)
        # Every field starts as NULL, every marker flag as false.
        self.template = [FALSE if name.endswith("_is_marker") else NULL for name in file_names]
        self.names = file_names

    def format_tuple(self, data: bytes, pos: int) -> tuple[list[bytes], int, bool]:
        """The action fields of the TupleData at `pos`, the position after it, and whether
        pgoutput left query unsent ('u': its field is then \\N)."""
        if (data[pos] << 8) | data[pos + 1] != self.columns:
            raise ProtocolError(
                f"a tuple of {(data[pos] << 8) | data[pos + 1]} columns, and action has {self.columns}"
            )
        pos += 2
        unpack_int32 = UNPACK_INT32
        fields = self.template.copy()
        unchanged = False
        for field, kind in self.plan:
            marker = data[pos]
            if marker == _TEXT_VALUE:
                start = pos + 5
                pos = start + unpack_int32(data, pos + 1)[0]
                value = data[start:pos]
                if kind == _RAW:
                    fields[field] = value
                elif kind == _NAIVE_TIME:
                    fields[field] = _naive_utc(value)
                else:
                    fields[field] = b'"' + value.replace(b'"', b'""') + b'"'
                    if kind == _FLAGGED_TEXT and value == NULL:
                        fields[field + 1] = TRUE
            elif marker == _NULL_VALUE:
                pos += 1
            elif marker == _UNCHANGED_VALUE and field == self.toastable_field:
                unchanged = True
                pos += 1
            else:
                what = (
                    "unsent (unchanged TOAST), and only query can be"
                    if marker == _UNCHANGED_VALUE
                    else (f"of kind {chr(marker)!r}, not text (t) or NULL (n)")
                )
                raise ProtocolError(f"pgoutput sent {self.names[field]} {what}")
        if pos > len(data):
            raise ProtocolError(f"tuple data runs past the end of the message ({pos} > {len(data)} bytes)")
        return fields, pos, unchanged


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
