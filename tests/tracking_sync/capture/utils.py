"""Helpers of the change capture tests: the test's source, its writes, and reading batches."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import psycopg2

from tracking_sync.capture.batch import BatchResult, read_changes
from tracking_sync.capture.pgoutput import UNCHANGED, Record, Relation, decode_message
from tracking_sync.capture.rows import CHANGE_COLUMN_NAMES
from tracking_sync.capture.slot import PUBLICATION, create_slot, current_lsn
from tracking_sync.core.lsn import format_lsn
from tracking_sync.core.tables import ACTION

# 40,000 characters of hex from md5: compresses to about half, still far past the 2 kB
# TOAST threshold, so the value is stored out of line (a TOAST pointer in the row).
TOASTED_QUERY_SQL = "(select string_agg(md5(i::text), '') from generate_series(1, 1250) as i)"


class RowList:
    """A writer that keeps the rows, each on its own (split where a newline ends a row: outside
    quotes), and checks that every write_rows() holds the whole rows it counts."""

    def __init__(self) -> None:
        self.rows: list[bytes] = []

    def write_rows(self, data: bytes, rows: int) -> None:
        assert data.endswith(b"\n"), "write_rows() takes whole rows"
        made, start, quoted = [], 0, False
        for position, byte in enumerate(data):
            if byte == 0x22:  # '"': a doubled quote toggles twice
                quoted = not quoted
            elif byte == 0x0A and not quoted:
                made.append(data[start : position + 1])
                start = position + 1
        assert len(made) == rows, f"write_rows() said {rows} rows and wrote {len(made)}"
        self.rows.extend(made)


@dataclass
class CaptureSource:
    dsn: str
    database: str
    slot: str
    publication: str = PUBLICATION
    consistent_lsn: int = 0
    _connections: list[Any] = field(default_factory=list)
    _reader: Any = None
    _writer: Any = None

    def connect(self, **settings: str) -> Any:
        connection = psycopg2.connect(self.dsn)
        with connection.cursor() as cursor:
            cursor.execute("set statement_timeout to '60s'")  # a hung slot creation fails loudly
            for name, value in settings.items():
                cursor.execute(f"set {name} to %s", (value,))
        connection.commit()
        self._connections.append(connection)
        return connection

    @property
    def reader(self) -> Any:
        """The capture's connection (the pipeline's: psycopg2, not autocommit)."""
        if self._reader is None:
            self._reader = self.connect()
        return self._reader

    def execute(self, *statements: str, params: Any = None) -> None:
        """Run statements in ONE transaction, committed synchronously: the devstack runs
        synchronous_commit=off, and a batch planned at the flushed LSN must see the commit."""
        if self._writer is None:
            self._writer = self.connect(synchronous_commit="on")
        with self._writer.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement, params)
        self._writer.commit()

    def fetch(self, sql: str, params: Any = None) -> list[tuple]:
        try:
            with self.reader.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            self.reader.rollback()

    def create_slot(self) -> int:
        self.consistent_lsn = create_slot(self.reader, self.slot, self.publication).consistent_lsn
        return self.consistent_lsn

    def now(self) -> int:
        """An upto_lsn, as a run plans it."""
        return current_lsn(self.reader)

    def read(self, applied_lsn: int, upto_lsn: int, **options: Any) -> tuple[list[bytes], BatchResult]:
        writer = RowList()
        result = read_changes(
            self.reader, self.slot, self.publication, applied_lsn, upto_lsn, writer, **options
        )
        return writer.rows, result

    def peek_messages(
        self, upto_lsn: int | None = None, publication: str | None = None, **options: str
    ) -> list[Record]:
        """The slot's raw pgoutput messages, decoded (extra options: messages='true' ...)."""
        extra = [item for pair in options.items() for item in pair]
        placeholders = "".join(", %s" for _ in extra)
        rows = self.fetch(
            "select data from pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, null, "
            f"'proto_version', '1', 'publication_names', %s{placeholders})",
            (
                self.slot,
                None if upto_lsn is None else format_lsn(upto_lsn),
                publication or self.publication,
                *extra,
            ),
        )
        return [decode_message(bytes(data)) for (data,) in rows]

    def close(self) -> None:
        for connection in self._connections:
            connection.close()


def parse_rows(rows: list[bytes]) -> list[dict[str, str]]:
    """Change rows as dicts of their CSV fields (quotes removed: \\N and "\\N" both read \\N,
    so a test of the dialect itself compares bytes)."""
    text = b"".join(rows).decode()
    parsed = [dict(zip(CHANGE_COLUMN_NAMES, fields, strict=True)) for fields in csv.reader(io.StringIO(text))]
    assert len(parsed) == len(rows), "one RowList row per CSV row"
    return parsed


def action_fields(row: bytes) -> bytes:
    """The action columns of a change row, as written: between the four change columns
    (never quoted inside, never a comma) and the trailing query_unchanged flag."""
    head_end = 0
    for _ in range(4):
        head_end = row.index(b",", head_end) + 1
    return row[head_end : row.rindex(b",")]


def reference_fields(relation: Relation, values: tuple) -> list[bytes]:
    """The action fields of a decoded tuple in export's dialect, written the plain way, by
    name: what ActionImages.format_tuple must give for the same message."""
    by_name = dict(zip((column.name for column in relation.columns), values, strict=True))
    types = {column.name: column.type_oid for column in relation.columns}
    fields = []
    for column in ACTION.columns:
        value = by_name[column.name]
        if value is None or value is UNCHANGED:
            fields.append(b"\\N")
        elif column.is_text:
            fields.append(b'"' + value.replace(b'"', b'""') + b'"')
        elif column.name == ACTION.time_column and types[column.name] == 1114:
            fields.append(value + b"+00")
        else:
            fields.append(value)
        if column.travels_with_null_flag:
            fields.append(b"t" if value == b"\\N" else b"f")
    return fields
