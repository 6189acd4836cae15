"""The pass-through path loads what the per-field path loads: the same values, the same
rejected rows on the same lines (docs: copy-parameters-data-conversion, r_STL_LOAD_ERRORS).

The CSV each path sends is read back as PostgreSQL's COPY (FORMAT csv, NULL '\\N') reads
it, then each value as its column type's input function would, so the text may differ
(a row passed through, or converted and quoted) while the loaded values may not.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from devstack.redshift.copy import (
    LoadResult,
    TargetColumn,
    generate_copy_data,
    parse_copy,
    passthrough,
    stream,
)
from tests.devstack.redshift.unit.fake_s3 import FakeS3Client

COLUMNS = [
    TargetColumn("id", "int4", -1, True, "integer"),
    TargetColumn("small", "int2", -1, False, "smallint"),
    TargetColumn("name", "varchar", 8 + 4, True, "character varying(8)"),
    TargetColumn("ts", "timestamptz", -1, False, "timestamp with time zone"),
    TargetColumn("ok", "bool", -1, False, "boolean"),
    TargetColumn("amount", "numeric", ((6 << 16) | 2) + 4, False, "numeric(6,2)"),
    TargetColumn("note", "varchar", 12 + 4, False, "character varying(12)"),
]
OPTIONS = "csv null as '\\N' timeformat 'auto' maxerror 100000"

# fields of each column, valid or not, typical or awkward
CHOICES = [
    ["1", "42", "-7", "+3", " 5", "x", "", "\\N", "1234567890", "0007"],
    ["1", "\\N", "", "99999", "-32768", "32767", " 1", '"4"'],
    [
        "abc",
        '"a,b"',
        '"say ""hi"""',
        '""',
        "",
        '"\\N"',
        "\\N",
        "ééé",
        "éééé",
        "123456789",
        '"tab\there"',
        '"a\r\nb"',
        '"a\nb"',
        '"\\."',
        'a"b',
        '"x\n\\.\ny"',
        "'q'",
    ],
    [
        "2024-01-02 03:04:05",
        "2024-01-02 03:04:05.123+00",
        "2024-01-02 03:04:05+05:30",
        "2024-02-29 00:00:00",
        "2024-13-01 00:00:00",
        "\\N",
        "",
        "2024-01-02",
        "2024-01-02T03:04:05Z",
    ],
    ["t", "f", "yes", "NO", "1", "0", "on", "tr", "\\N", "", "Y"],
    ["1.5", "12.345", "-0.01", "1234", "12345", "abc", "\\N", "", "1.", ".5"],
    [
        '""',
        "",
        "\\N",
        '"\\N"',
        "short",
        '"\xff bad"',
        "bad \xfe",
        "  ",
        '"q""q"',
        "x,y",
        '"two\r\nlines"',
        '"two\nlines"',
    ],
]


def random_file(seed: int, rows: int) -> bytes:
    rng = random.Random(seed)
    lines = []
    for _ in range(rows):
        roll = rng.random()
        if roll < 0.5:  # mostly what the exporter writes
            fields = ["1", "2", '"abc"', "2024-01-02 03:04:05.5+00", "t", "1.25", '""']
        else:
            fields = [rng.choice(c) for c in CHOICES]
        if roll > 0.98:
            fields = fields[: rng.randrange(1, len(fields))]  # too few fields
        elif roll > 0.97:
            fields.append("extra")
        line = ",".join(fields)
        lines.append(line)
        if roll > 0.99:
            lines.append("")  # a blank line
    text = "\n".join(lines) + ("\n" if rng.random() < 0.8 else "")
    # \xfe and \xff stand for bytes that are not UTF-8; the rest is UTF-8
    return b"".join(bytes([ord(c)]) if c in "\xfe\xff" else c.encode() for c in text)


def postgres_csv_rows(data: bytes) -> list[list[str | None]]:
    """PostgreSQL's CSV reading (delimiter ',', quote '"', NULL '\\N'): fields, NULL as None."""
    rows, fields, field, quoted, in_quote, i = [], [], [], False, False, 0
    text = data.decode()
    while i < len(text):
        c = text[i]
        if in_quote:
            if c == '"' and text[i + 1 : i + 2] == '"':
                field.append('"')
                i += 1
            elif c == '"':
                in_quote = False
            else:
                field.append(c)
        elif c == '"':
            in_quote = quoted = True
        elif c in ",\n":
            value = "".join(field)
            fields.append(None if value == "\\N" and not quoted else value)
            field, quoted = [], False
            if c == "\n":
                rows.append(fields)
                fields = []
        else:
            field.append(c)
        i += 1
    assert not fields and not field, "the CSV PostgreSQL gets ends with a whole line"
    return rows


def typed(row: list[str | None]) -> tuple:
    """Each value as PostgreSQL's input function reads it into its column."""
    out = []
    for column, value in zip(COLUMNS, row, strict=True):
        if value is None:
            out.append(None)
        elif column.typname in ("int4", "int2"):
            out.append(int(value))
        elif column.typname == "bool":
            out.append(value.strip().lower() in ("t", "true", "y", "yes", "1", "on"))
        elif column.typname == "numeric":
            out.append(float(value))
        elif column.typname == "timestamptz":
            stamp = dt.datetime.fromisoformat(value)
            out.append(stamp.replace(tzinfo=stamp.tzinfo or dt.UTC))
        else:
            assert len(value.encode()) <= column.typmod - 4, value
            out.append(value)
    return tuple(out)


def load(data: bytes, monkeypatch, per_field_only: bool) -> tuple[list[tuple], LoadResult, bytes]:
    s3 = FakeS3Client()
    s3.put("s3://b/f.csv", data)
    spec = parse_copy(f"copy t from 's3://b/f.csv' iam_role 'arn:r' {OPTIONS}")
    with monkeypatch.context() as patch:
        if per_field_only:
            patch.setattr(stream, "line_runs_pattern", lambda columns, spec: None)
        result = LoadResult()
        out = b"".join(generate_copy_data(spec, COLUMNS, s3, result))
    return [typed(r) for r in postgres_csv_rows(out)], result, out


def rejected(result: LoadResult) -> list[tuple]:
    return [(r.line_number, r.colname, r.err_code, r.raw_field_value, r.raw_line) for r in result.rejected]


@pytest.mark.parametrize("block_bytes", [passthrough.BLOCK_BYTES, 7, 64, 200])
@pytest.mark.parametrize("seed", range(6))
def test_passthrough_loads_what_the_per_field_path_loads(monkeypatch, seed, block_bytes):
    data = random_file(seed, 300)
    expected_rows, expected, _ = load(data, monkeypatch, per_field_only=True)
    monkeypatch.setattr(passthrough, "BLOCK_BYTES", block_bytes)
    rows, result, out = load(data, monkeypatch, per_field_only=False)
    assert rows == expected_rows
    assert rejected(result) == rejected(expected)
    assert (result.rows, result.files, result.failed) == (expected.rows, 1, False)
    if block_bytes > 64:  # a block holds whole rows: the exporter's kind pass on as they came
        assert b'\n1,2,"abc",2024-01-02 03:04:05.5+00,t,1.25,""\n' in out


def test_the_exporters_rows_pass_through_whole(monkeypatch):
    line = '1,2,"abc",2024-01-02 03:04:05.5+00,t,1.25,""\n'
    data = (line + '2,\\N,"x ""y""\r\nz",\\N,\\N,\\N,"multi\nline"\n' + line).encode()
    rows, result, out = load(data, monkeypatch, per_field_only=False)
    assert out == data
    assert result.rows == 3 and len(rows) == 3


def test_rows_passthrough_must_not_take():
    spec = parse_copy(f"copy t from 's3://b/f.csv' iam_role 'arn:r' {OPTIONS}")
    rows = passthrough.line_runs_pattern(COLUMNS, spec)
    good = b'1,2,"abc",2024-01-02 03:04:05.5+00,t,1.25,""\n'
    assert rows.fullmatch(good)
    for field, bad in [
        (2, b'"\\N"'),  # Redshift: NULL; PostgreSQL: the text \N
        (0, b"\\N"),  # NOT NULL
        (1, b""),  # Redshift: NULL; PostgreSQL: an error
        (0, b" 5"),  # PostgreSQL trims it, Redshift refuses it
        (1, b"99999"),  # may overflow
        (4, b"on"),  # PostgreSQL only
        (5, b"1.234"),  # PostgreSQL rounds, Redshift truncates
        (3, b"2024-02-29 00:00:00"),  # leap day: the per-field path decides
        (3, b"2024-01-02T03:04:05Z"),
        (2, "ééééé".encode()),  # 10 bytes in varchar(8)
        (2, b'"a\rb"'),  # a lone carriage return
        (2, b'"a\nb"'),  # a line break inside: only as a row alone
        (2, b'a"b'),  # a quote inside an unquoted field
    ]:
        fields = good[:-1].split(b",")
        fields[field] = bad
        assert rows.fullmatch(b",".join(fields) + b"\n") is None, bad


@pytest.mark.parametrize(
    "options",
    [
        "csv null as 'NULL'",  # not PostgreSQL's marker
        "csv delimiter '|'",
        "csv quote as ''''",
        "delimiter ','",  # not CSV
        "csv fillrecord",
        "csv blanksasnull",
        "csv dateformat 'DD/MM/YYYY'",
    ],
)
def test_options_that_leave_no_passthrough(options):
    spec = parse_copy(f"copy t from 's3://b/f.csv' iam_role 'arn:r' {options}")
    columns = COLUMNS[:3] + [TargetColumn("d", "date", -1, False, "date")]
    assert passthrough.line_runs_pattern(columns, spec) is None


# docs: r_Character_types — a quoted value with doubled quotes or line breaks in a long
# VARCHAR is matched by pieces: never over the column's bytes, at worst the per-field way
def test_a_long_varchar_never_passes_over_its_bytes():
    spec = parse_copy(f"copy t from 's3://b/f.csv' iam_role 'arn:r' {OPTIONS}")
    columns = [COLUMNS[0], TargetColumn("q", "varchar", 5000 + 4, False, "character varying(5000)")]
    rows = passthrough.line_runs_pattern(columns, spec)

    def passes(value: str) -> bool:
        return rows.fullmatch(f'1,"{value}"\n'.encode()) is not None

    assert passes("x" * 5000) and not passes("x" * 5001)
    assert passes('say ""hi""\r\nthen' + "é" * 100)
    assert passes('""' + "x" * 3000) and not passes('""' + "x" * 5000)  # 3001, 5001 bytes
    assert not passes("é" * 2499 + '""\r\n')  # 5001 bytes
