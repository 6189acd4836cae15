"""The load stream: every accepted row of every source file, as PostgreSQL CSV.

generate_copy_data() reads the files a CopySpec names (copy.files), passes rows
that need no conversion through whole (copy.fastpath), converts the others field
by field (copy.convert), and sends every row Redshift would reject down one
path: a RejectedRow in LoadResult.rejected, with stl_load_errors' fields, and
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
from devstack.redshift.copy.files import SourceRecords, list_source_files
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


def generate_copy_data(
    spec: CopySpec,
    columns: list[TargetColumn],
    client,
    result: LoadResult,
    cancelled: threading.Event | None = None,
) -> Iterator[bytes]:
    """Yield PostgreSQL CSV (about 1 MiB a chunk) for every accepted row of every file.

    Rejected rows go to result.rejected; when more than MAXERROR are rejected,
    result.failed is set and the generator stops (the caller sends CopyFail).
    """
    encoders = [field_encoder(c, spec) for c in columns]
    fast = row_pattern(columns, spec)
    fast_match = fast.fullmatch if fast is not None else None
    quote_rows = batch_quoter(spec) if fast is not None else None
    join = FIELD_SEP.join
    ignoreblanklines, removequotes = spec.ignoreblanklines, spec.removequotes
    out: list[str] = []  # finished CSV text
    batch: list[str] = []  # NUL-joined rows of the fast path, not yet quoted
    size = 0

    def flush() -> bytes:
        nonlocal size
        if batch:
            out.append(quote_rows(batch))
            batch.clear()
        data = "".join(out).encode("utf-8")
        out.clear()
        size = 0
        return data

    for url in list_source_files(client, spec):
        result.files += 1
        records = SourceRecords(client, url, spec)
        last_line = records.line_num
        rows = 0
        try:
            for fields in records:
                line_number = last_line + 1
                last_line = records.line_num
                if removequotes:
                    fields = [f[1:-1] if len(f) >= 2 and f[0] == f[-1] == '"' else f for f in fields]
                try:
                    if records.invalid_utf8:
                        fields = accept_invalid_utf8(fields, spec.acceptinvchars)
                    joined = join(fields) if fast_match is not None else ""
                    if fast_match is not None and fast_match(joined) is not None:
                        batch.append(joined)
                        size += len(joined)
                    else:
                        if not fields and ignoreblanklines:
                            continue
                        line = encode_row(fields, encoders, spec)
                        if batch:  # keep the order of the rows
                            out.append(quote_rows(batch))
                            batch.clear()
                        out.append(line + "\n")
                        size += len(line)
                except RowRejected as rejection:
                    if result.reject(rejection.rejected_row(url, line_number, columns, spec), spec.maxerror):
                        return
                    continue
                rows += 1
                if size >= _CHUNK_BYTES:
                    result.rows += rows
                    rows = 0
                    yield flush()
                    if cancelled is not None and cancelled.is_set():
                        return
        finally:
            result.rows += rows
    if out or batch:
        yield flush()
