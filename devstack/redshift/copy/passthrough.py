"""The pass-through path of a COPY: runs of CSV lines PostgreSQL reads exactly as Redshift would.

When a file's bytes are already CSV that PostgreSQL's own COPY (FORMAT csv, NULL
AS as its NULL marker) parses into the values Redshift's rules give, the stand-in
need not parse them at all: it sends the decompressed bytes on as they are, in
large runs, and PostgreSQL does the parsing in C. line_runs_pattern() and
multiline_row_pattern() are bytes regexes of such rows, a SUBSET of what the
per-field path (copy.convert) would have PostgreSQL load to the same values:

- the file dialect is the stand-in's own (delimiter ',', quote '"') and NULL AS
  is PostgreSQL's marker too (CopySpec.pg_null);
- every field is one PostgreSQL reads to the same value: an integer short enough
  not to overflow, a decimal within its scale (Redshift truncates, PostgreSQL
  would round), Redshift's boolean forms, a valid ISO date or timestamp (with an
  offset), the unquoted NULL marker in a nullable column, a string of at most the
  column's BYTES (a doubled quote counts once), unquoted without quotes, or quoted
  but not the NULL marker (Redshift reads a quoted "\\N" as NULL, PostgreSQL as text);
- no NUL, no carriage return but in a quoted '\\r\\n'; each row ends with '\\n', so the
  lines PostgreSQL gets are the lines csv.reader counts.

Anything else, a line starting with PostgreSQL's end-of-data marker '\\.', and bytes
that are not UTF-8 take the per-field path (copy.stream), one record at a time,
with the same rejects and line numbers as before; the next line is tried again.
"""

from __future__ import annotations

import csv
import re

from devstack.redshift.copy.convert import INT_FAST_DIGITS, TargetColumn
from devstack.redshift.copy.statement import CopySpec

_MONTH_DAY = (
    rb"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    rb"|(?:0[13578]|1[02])-31)"  # 29 February goes the slow way (leap years)
)
_DATE = rb"(?!0000)\d{4}-" + _MONTH_DAY
# an offset both Python's fromisoformat (TIMEFORMAT 'auto') and PostgreSQL read alike
_TIMESTAMP = (
    _DATE + rb"(?: (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?(?:[+-](?:0\d|1[0-4])(?::?[0-5]\d)?)?)?"
)
_BOOL = rb"(?i:t|true|y|yes|1|f|false|n|no|0)"
_FLOAT = rb"[+-]?\d{1,15}(?:\.\d{1,15})?"
END_OF_DATA = b"\\."  # PostgreSQL's end-of-data marker, at the start of a line
# a quoted value with doubled quotes or line breaks in a VARCHAR this long is matched by pieces
_LONG_VARCHAR = 4096
_PIECE = 64


def _field_pattern(col: TargetColumn, spec: CopySpec, sep: bytes, single_line: bool) -> bytes | None:
    """The regex of this column's field and the separator after it, or None (no pass-through)."""
    typ = col.typname
    null = re.escape(spec.null_as.encode())
    if typ in ("varchar", "bpchar") and col.typmod >= 4:
        if typ == "bpchar" or spec.blanksasnull or spec.trimblanks:
            return None
        limit = col.typmod - 4
        least = 1 if spec.emptyasnull else 0
        # a byte of a quoted value: a line break in it only as \r\n in runs (so that their
        # rows are their \n less their \r\n), also as \n in a row alone; never a lone \r
        # (it ends a line for csv.reader, not for PostgreSQL)
        plain = rb"[^\"\r\n\x00]"
        line_byte = rb"[^\"\r\n\x00]" if single_line else rb"[^\"\r\x00]"
        if limit < _LONG_VARCHAR:  # each byte counted: a doubled quote counts once
            general = rb"(?:%s|\"\"|\r(?=\n)|(?<=\r)\n){%d,%d}+" % (line_byte, least, limit)
        else:  # counted by pieces of up to _PIECE bytes, 45 ns a byte is too slow for long text:
            # at most limit // _PIECE pieces hold at most `limit` bytes (a longer value, or one
            # in many short pieces, takes the per-field path)
            general = rb"(?:%s{1,%d}+|\"\"|\r\n){%d,%d}+" % (line_byte, _PIECE, least, limit // _PIECE)
        # unquoted: no quote (PostgreSQL would start quoting there), no separator;
        # in a NOT NULL column not the NULL marker (PostgreSQL would read NULL)
        unquoted = rb"[^\",\r\n\x00]{%d,%d}+" % (least, limit) + sep
        if col.not_null:
            unquoted = rb"(?!" + null + sep + rb")" + unquoted
        # quoted: not the NULL marker; first without doubled quotes (a fast character run)
        quoted = rb"\"(?!" + null + rb"\")"
        return (
            rb"(?>"
            + unquoted
            + rb"|"
            + quoted
            + plain
            + rb"{%d,%d}+\"" % (least, limit)
            + sep
            + rb"|"
            + quoted
            + general
            + rb"\""
            + sep
            + rb")"
        )
    if typ in INT_FAST_DIGITS:
        pattern = rb"[+-]?\d{1,%d}" % INT_FAST_DIGITS[typ]
    elif typ == "numeric" and col.typmod >= 4 and not spec.roundec:
        scale = (col.typmod - 4) & 0xFFFF
        whole = ((col.typmod - 4) >> 16) - scale
        if whole < 1:
            return None
        pattern = rb"[+-]?\d{1,%d}" % whole + (rb"(?:\.\d{1,%d})?" % scale if scale else b"")
    elif typ in ("float4", "float8"):
        pattern = _FLOAT
    elif typ == "bool":
        pattern = _BOOL
    elif typ == "date" and (spec.dateformat is None or spec.dateformat.upper() in ("YYYY-MM-DD", "AUTO")):
        pattern = _DATE
    elif typ in ("timestamp", "timestamptz") and (
        spec.timeformat is None or spec.timeformat.upper() in ("YYYY-MM-DD HH:MI:SS", "AUTO")
    ):
        pattern = _TIMESTAMP
    else:
        return None
    if col.not_null:  # NULL AS in a NOT NULL column is a load error: the per-field path
        return rb"(?:" + pattern + rb")" + sep
    return rb"(?:" + null + rb"|" + pattern + rb")" + sep


def _rows_pattern(columns: list[TargetColumn], spec: CopySpec, single_line: bool) -> bytes | None:
    fields = []
    for index, column in enumerate(columns):
        sep = b"\n" if index == len(columns) - 1 else b","
        field = _field_pattern(column, spec, sep, single_line)
        if field is None:
            return None
        fields.append(field)
    return b"".join(fields)


def passthrough_allowed(columns: list[TargetColumn], spec: CopySpec) -> bool:
    """Whether this COPY's options let PostgreSQL read the file itself.

    Needs the stand-in's own CSV dialect, NULL AS as PostgreSQL's marker, and two
    columns or more (a one-field line could read as an empty line)."""
    return (
        spec.csv
        and spec.delimiter == ","
        and spec.quote == '"'
        and bool(spec.pg_null)
        and spec.pg_null == spec.null_as
        and not (spec.fillrecord or spec.removequotes or spec.escape)
        and len(columns) >= 2
    )


def line_runs_pattern(columns: list[TargetColumn], spec: CopySpec) -> re.Pattern[bytes] | None:
    """Any number of rows that can go to PostgreSQL as they are, with no line break in a
    value but \r\n (None: not for this COPY)."""
    if not passthrough_allowed(columns, spec):
        return None
    row = _rows_pattern(columns, spec, single_line=True)
    return None if row is None else re.compile(rb"(?:" + row + rb")*+")


def multiline_row_pattern(columns: list[TargetColumn], spec: CopySpec) -> re.Pattern[bytes] | None:
    """One row that can go to PostgreSQL as it is, a quoted value of which may hold \n."""
    if not passthrough_allowed(columns, spec):
        return None
    row = _rows_pattern(columns, spec, single_line=False)
    return None if row is None else re.compile(row)


BLOCK_BYTES = 1 << 20
_LINE = re.compile(rb"[^\r\n]*+(?:\r\n?|\n)?")  # a line as TextIOWrapper(newline="") splits them

RUN = "run"  # item kinds of passthrough_items()
RECORD = "record"


def passthrough_items(stream, spec: CopySpec, line_runs: re.Pattern[bytes], multiline_row: re.Pattern[bytes]):
    """One decompressed source file as ("run", bytes, rows) and ("record", fields, line_number, invalid_utf8).

    A run is CSV to send on unchanged (complete lines, valid UTF-8); a record is
    one row the per-field path must read, parsed by csv.reader exactly as
    copy.files.SourceRecords parses it (same line splitting, same decoding,
    IGNOREHEADER first), with the number of the line it starts on.
    """
    buf = b""
    pos = 0  # the next unread byte of buf: always at the start of a record
    eof = False
    line = 0  # lines before pos, as csv.reader counts them
    marker: int | None = None  # where buf has "\n\\." at or after pos; -1: nowhere; None: not known

    def read_more() -> bool:
        nonlocal buf, pos, eof, marker
        marker = None
        block = stream.read(BLOCK_BYTES)
        if not block:
            eof = True
            return False
        buf = buf[pos:] + block
        pos = 0
        return True

    def one_record() -> tuple[list[str] | None, bool]:
        """The record at pos, through csv.reader (None at the end of the file), and whether
        it had bytes that are not UTF-8 (decoded as surrogates, as SourceRecords does)."""
        nonlocal pos, line
        invalid = False

        def lines():
            nonlocal pos, invalid
            while True:
                end = _LINE.match(buf, pos).end()
                if end == len(buf) and not eof and (end == pos or buf[end - 1] != 0x0A):
                    read_more()  # the line (or its \r\n) may go on in the next block
                    continue
                if end == pos:
                    return
                raw = buf[pos:end]
                pos = end
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text = raw.decode("utf-8", "surrogateescape")
                    invalid = True
                yield text

        reader = csv.reader(lines(), delimiter=spec.delimiter, quotechar=spec.quote, strict=False)
        fields = next(reader, None)
        line += reader.line_num
        return fields, invalid

    read_more()
    for _ in range(spec.ignoreheader):  # docs: IGNOREHEADER applies to each file
        if one_record()[0] is None:
            return
    while True:
        # PostgreSQL's end-of-data marker: no run goes past a line that starts with it
        if marker is None or 0 <= marker < pos:  # searched once per block and marker
            marker = buf.find(b"\n" + END_OF_DATA, pos)
        limit = len(buf) if marker < 0 else marker + 1
        end = line_runs.match(buf, pos, limit).end()
        valid_end = _utf8_end(buf, pos, end, line_runs) if end > pos else pos
        if valid_end > pos:
            lines = buf.count(b"\n", pos, valid_end)
            yield RUN, buf[pos:valid_end], lines - buf.count(b"\r\n", pos, valid_end)
            line += lines
            pos = valid_end
        if valid_end == end:  # not stopped by bytes that are not UTF-8: by what, then?
            if pos == len(buf):
                if not read_more():
                    return
                continue
            if not eof and len(buf) - pos < BLOCK_BYTES:
                read_more()  # perhaps a row the end of the block cut: look again with more
                continue
            match = multiline_row.match(buf, pos, limit)
            if match is not None and _utf8_end(buf, pos, match.end(), None) == match.end():
                yield RUN, buf[pos : match.end()], 1
                line += buf.count(b"\n", pos, match.end())
                pos = match.end()
                continue
        start_line = line + 1
        fields, invalid = one_record()
        if fields is None:
            return
        yield RECORD, fields, start_line, invalid


def _utf8_end(buf: bytes, pos: int, end: int, line_runs: re.Pattern[bytes] | None) -> int:
    """end when buf[pos:end] is UTF-8; else where the lines before the first bad byte end
    (pos when there is no line_runs to find them)."""
    try:
        str(memoryview(buf)[pos:end], "utf-8")
    except UnicodeDecodeError as exc:
        return pos if line_runs is None else line_runs.match(buf, pos, pos + exc.start).end()
    return end
