"""The load stream: every accepted row of every source file, as PostgreSQL CSV.

generate_copy_data() reads the files a CopySpec names (copy.files), sends runs of
lines PostgreSQL reads as Redshift would on as they are (copy.passthrough: the
common case, parsed by PostgreSQL in C), parses the other rows with csv.reader,
passes those that need no conversion through whole (copy.fastpath), converts the
rest field by field (copy.convert), and sends every row Redshift would reject
down one path: a RejectedRow in LoadResult.rejected, with stl_load_errors' fields, and
the load stops once more than MAXERROR rows are rejected (docs: r_COPY,
copy-parameters-data-load, r_STL_LOAD_ERRORS).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from devstack.redshift.copy.convert import TargetColumn, field_encoder
from devstack.redshift.copy.errors import FieldError
from devstack.redshift.copy.fastpath import FIELD_SEP, batch_quoter, row_pattern
from devstack.redshift.copy.files import SourceRecords, list_source_files, open_source_file
from devstack.redshift.copy.passthrough import (
    RECORD,
    RUN,
    line_runs_pattern,
    multiline_row_pattern,
    passthrough_items,
)
from devstack.redshift.copy.statement import CopySpec

_CHUNK_BYTES = 1 << 20
_SURROGATES = re.compile("[\udc80-\udcff]+")  # bytes that were not UTF-8 (surrogateescape)


@dataclass
class RejectedRow:
    """One row Redshift would not load: the columns of stl_load_errors that describe it."""

    filename: str
    line_number: int
    colname: str
    type: str
    col_length: str
    position: int
    raw_line: str
    raw_field_value: str
    err_code: int
    err_reason: str


@dataclass
class LoadResult:
    rows: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    failed: bool = False
    files: int = 0

    def reject(self, row: RejectedRow, maxerror: int) -> bool:
        """Record a rejected row; True when the load must stop (more than MAXERROR rejected)."""
        self.rejected.append(row)
        if len(self.rejected) > maxerror:
            self.failed = True
        return self.failed


class RowRejected(Exception):
    """A row Redshift rejects: why, and which field (None: the row as a whole)."""

    def __init__(self, fields: list[str], code: int, reason: str, index: int | None = None):
        super().__init__(code, reason)
        self.fields = fields
        self.code = code
        self.reason = reason
        self.index = index

    def rejected_row(
        self, filename: str, line_number: int, columns: list[TargetColumn], spec: CopySpec
    ) -> RejectedRow:
        fields, index = self.fields, self.index
        column = columns[index] if index is not None and index < len(columns) else None
        col_length = ""  # as before: the length only for a value the column's type refused
        if column is not None and self.code != 1220 and column.typmod >= 4:
            col_length = str(column.typmod - 4)
        value = fields[index] if index is not None and index < len(fields) else ""
        return RejectedRow(
            filename,
            line_number,
            column.name if column is not None else "",
            column.type_display if column is not None else "",
            col_length,
            0,
            raw_line(fields, spec),
            _SURROGATES.sub("?", value) if self.code == 1220 else value,
            self.code,
            self.reason,
        )


def raw_line(fields: list[str], spec: CopySpec) -> str:
    """stl_load_errors.raw_line: rebuilt from the parsed fields, at most 1024 characters."""
    return spec.delimiter.join(_SURROGATES.sub("?", f) for f in fields)[:1024]


def accept_invalid_utf8(fields: list[str], replacement: str | None) -> list[str]:
    """Fields with each undecodable byte replaced (ACCEPTINVCHARS), or RowRejected (1220)."""
    for index, value in enumerate(fields):
        if _SURROGATES.search(value):
            if replacement is None:
                raise RowRejected(
                    fields, 1220, "String contains invalid or unsupported UTF8 codepoints", index
                )
            return [_SURROGATES.sub(lambda m: replacement * len(m.group(0)), f) for f in fields]
    return fields


def encode_row(fields: list[str], encoders: list[Callable[[str], str]], spec: CopySpec) -> str:
    """One row through the per-field converters: a line of PostgreSQL CSV, or RowRejected."""
    ncols = len(encoders)
    if len(fields) != ncols:
        if len(fields) < ncols and spec.fillrecord:
            fields = fields + [spec.null_as] * (ncols - len(fields))
        elif len(fields) > ncols:
            raise RowRejected(fields, 1202, "Extra column(s) found")
        else:
            raise RowRejected(fields, 1203, "Delimiter not found")
    try:
        return ",".join([encode(v) for encode, v in zip(encoders, fields)])
    except FieldError as exc:
        index = _failing_field(encoders, fields)
        raise RowRejected(fields, exc.code, exc.reason, index) from None


def _failing_field(encoders, fields) -> int:
    for index, (encode, value) in enumerate(zip(encoders, fields)):
        try:
            encode(value)
        except FieldError:
            return index
    return 0


class _CsvOut:
    """The CSV PostgreSQL gets, built up to a chunk: runs passed through as bytes,
    fast-path rows quoted in batches, converted lines, kept in order."""

    def __init__(self, quote_rows: Callable[[list[str]], str] | None) -> None:
        self._quote_rows = quote_rows
        self._parts: list[bytes] = []
        self._text: list[str] = []
        self._batch: list[str] = []  # NUL-joined rows of the fast path, not yet quoted
        self.size = 0

    def add_run(self, data: bytes) -> None:
        self._close_text()
        self._parts.append(data)
        self.size += len(data)

    def add_fast_row(self, joined: str) -> None:
        self._batch.append(joined)
        self.size += len(joined)

    def add_line(self, line: str) -> None:
        if self._batch:  # keep the order of the rows
            self._text.append(self._quote_rows(self._batch))
            self._batch.clear()
        self._text.append(line + "\n")
        self.size += len(line)

    def _close_text(self) -> None:
        if self._batch:
            self._text.append(self._quote_rows(self._batch))
            self._batch.clear()
        if self._text:
            self._parts.append("".join(self._text).encode("utf-8"))
            self._text.clear()

    def __bool__(self) -> bool:
        return bool(self._parts or self._text or self._batch)

    def take(self) -> bytes:
        self._close_text()
        data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return data


def _source_records(records: SourceRecords) -> Iterator[tuple]:
    """The per-field path's items: every record of the file, as passthrough_items() gives them."""
    last_line = records.line_num
    for fields in records:
        line_number = last_line + 1
        last_line = records.line_num
        yield RECORD, fields, line_number, records.invalid_utf8


def generate_copy_data(
    spec: CopySpec,
    columns: list[TargetColumn],
    client,
    result: LoadResult,
    cancelled: threading.Event | None = None,
) -> Iterator[bytes]:
    """Yield PostgreSQL CSV (about 1 MiB a chunk) for every accepted row of every file.

    Lines PostgreSQL reads as Redshift would go through as they are (copy.passthrough);
    the other rows are read field by field. Rejected rows go to result.rejected; when
    more than MAXERROR are rejected, result.failed is set and the generator stops (the
    caller sends CopyFail).
    """
    encoders = [field_encoder(c, spec) for c in columns]
    fast = row_pattern(columns, spec)
    fast_match = fast.fullmatch if fast is not None else None
    join = FIELD_SEP.join
    ignoreblanklines, removequotes = spec.ignoreblanklines, spec.removequotes
    line_runs = line_runs_pattern(columns, spec)
    multiline_row = multiline_row_pattern(columns, spec)
    out = _CsvOut(batch_quoter(spec) if fast is not None else None)

    for url in list_source_files(client, spec):
        result.files += 1
        if line_runs is not None and multiline_row is not None:
            stream = open_source_file(client, url, spec.compression)
            items = passthrough_items(stream, spec, line_runs, multiline_row)
        else:
            items = _source_records(SourceRecords(client, url, spec))
        rows = 0
        try:
            for item in items:
                if item[0] == RUN:
                    out.add_run(item[1])
                    rows += item[2]
                else:
                    _, fields, line_number, invalid_utf8 = item
                    if removequotes:
                        fields = [f[1:-1] if len(f) >= 2 and f[0] == f[-1] == '"' else f for f in fields]
                    try:
                        if invalid_utf8:
                            fields = accept_invalid_utf8(fields, spec.acceptinvchars)
                        joined = join(fields) if fast_match is not None else ""
                        if fast_match is not None and fast_match(joined) is not None:
                            out.add_fast_row(joined)
                        else:
                            if not fields and ignoreblanklines:
                                continue
                            out.add_line(encode_row(fields, encoders, spec))
                    except RowRejected as rejection:
                        if result.reject(
                            rejection.rejected_row(url, line_number, columns, spec), spec.maxerror
                        ):
                            return
                        continue
                    rows += 1
                if out.size >= _CHUNK_BYTES:
                    result.rows += rows
                    rows = 0
                    yield out.take()
                    if cancelled is not None and cancelled.is_set():
                        return
        finally:
            result.rows += rows
    if out:
        yield out.take()
