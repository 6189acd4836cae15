"""The load stream: files in, PostgreSQL CSV and rejected rows out, without a server or S3
(docs: r_COPY, loading-data-files-using-manifest, copy-parameters-data-load, r_STL_LOAD_ERRORS)."""

from __future__ import annotations

import json

import pytest

from devstack.redshift.copy import CopyLoadError, LoadResult, TargetColumn, generate_copy_data, parse_copy
from tests.devstack.redshift.unit.fake_s3 import FakeS3Client

ID = TargetColumn("id", "int4", -1, True, "integer")
NAME = TargetColumn("name", "varchar", 10 + 4, False, "character varying(10)")


def load(client, source: str, options: str = "csv", columns=(ID, NAME)) -> tuple[str, LoadResult]:
    spec = parse_copy(f"copy t from '{source}' iam_role 'arn:r' {options}")
    result = LoadResult()
    data = b"".join(generate_copy_data(spec, list(columns), client, result)).decode()
    return data, result


def rejections(result: LoadResult) -> list[tuple]:
    return [
        (r.filename.rsplit("/", 1)[1], r.line_number, r.colname, r.err_code, r.raw_field_value, r.raw_line)
        for r in result.rejected
    ]


@pytest.fixture
def s3():
    return FakeS3Client()


# docs: r_COPY (Using a key prefix) — every object whose key starts with the prefix
def test_rows_of_every_file_under_the_prefix_become_postgresql_csv_in_order(s3):
    s3.put("s3://b/in/part-1.csv", "5,éé\n")
    s3.put("s3://b/in/part-0.csv", '1,a\n2,"b,""q"""\n3,\n4,\\N\n')
    s3.put("s3://b/in/other.csv", "9,not me\n")
    data, result = load(s3, "s3://b/in/part-")
    # lines PostgreSQL reads as Redshift would pass through as they are (copy.passthrough)
    assert data == '1,a\n2,"b,""q"""\n3,\n4,\\N\n5,éé\n'
    assert (result.files, result.rows, result.rejected, result.failed) == (2, 5, [], False)


def test_gzip_and_ignoreheader_per_file(s3):
    s3.put("s3://b/z/a.gz", "id,name\n1,x\n", compression="gzip")
    s3.put("s3://b/z/b.gz", "id,name\n2,y\n", compression="gzip")
    data, result = load(s3, "s3://b/z/", "csv gzip ignoreheader 1")
    assert data == "1,x\n2,y\n"


def test_one_reject_path_records_each_kind_of_bad_row(s3):
    lines = ["1,ok", "x,bad id", "3,much too long", "4", "5,a,extra", "6,fine", "\\N,null id"]
    s3.put("s3://b/bad.csv", "\n".join(lines) + "\n")
    data, result = load(s3, "s3://b/bad.csv", "csv maxerror 10")
    assert data == "1,ok\n6,fine\n"
    assert rejections(result) == [
        ("bad.csv", 2, "id", 1207, "x", "x,bad id"),
        ("bad.csv", 3, "name", 1204, "much too long", "3,much too long"),
        ("bad.csv", 4, "", 1203, "", "4"),
        ("bad.csv", 5, "", 1202, "", "5,a,extra"),
        ("bad.csv", 7, "id", 1213, "\\N", "\\N,null id"),
    ]
    assert [r.col_length for r in result.rejected] == ["", "10", "", "", ""]
    assert (result.rows, result.failed) == (2, False)


# docs: copy-parameters-data-load — MAXERROR n: the load fails on the (n+1)th bad row
def test_more_rejected_rows_than_maxerror_fail_the_load(s3):
    s3.put("s3://b/bad.csv", "1,a\nx,b\ny,c\n4,d\n")
    _, result = load(s3, "s3://b/bad.csv", "csv maxerror 1")
    assert result.failed and [r.line_number for r in result.rejected] == [2, 3]
    _, result = load(s3, "s3://b/bad.csv", "csv")
    assert result.failed and len(result.rejected) == 1


# docs: copy-parameters-data-conversion (ACCEPTINVCHARS)
def test_invalid_utf8_is_rejected_or_replaced(s3):
    s3.put("s3://b/latin1.csv", "1,caf\xe9\n2,ok\n".encode("latin-1"))
    data, result = load(s3, "s3://b/latin1.csv", "csv maxerror 5")
    assert data == "2,ok\n"
    assert rejections(result) == [("latin1.csv", 1, "name", 1220, "caf?", "1,caf?")]
    data, result = load(s3, "s3://b/latin1.csv", "csv acceptinvchars as '^'")
    # the row read field by field comes quoted (copy.fastpath), the valid one as it was
    assert data == '"1","caf^"\n2,ok\n'


def test_a_quoted_value_over_several_lines_reports_the_line_it_starts_on(s3):
    s3.put("s3://b/multi.csv", '1,"two\nlines"\nx,bad\n')
    _, result = load(s3, "s3://b/multi.csv", "csv maxerror 1")
    assert [r.line_number for r in result.rejected] == [3]


def test_fillrecord_pads_missing_trailing_fields_with_null(s3):
    s3.put("s3://b/short.txt", "1\n")
    data, _ = load(s3, "s3://b/short.txt", "fillrecord")
    assert data == "1,\\N\n"


# docs: loading-data-files-using-manifest — listed files only; `mandatory` ones must exist
def test_manifest(s3):
    a = s3.put("s3://b/m/a.csv", "1,a\n")
    s3.put("s3://b/m/b.csv", "2,b\n")
    entries = [{"url": a, "mandatory": True}, {"url": "s3://b/m/missing.csv"}]
    s3.put("s3://b/m.manifest", json.dumps({"entries": entries}))
    data, _ = load(s3, "s3://b/m.manifest", "csv manifest")
    assert data == "1,a\n"
    entries[1]["mandatory"] = True
    s3.put("s3://b/m.manifest", json.dumps({"entries": entries}))
    with pytest.raises(CopyLoadError, match="missing a mandatory entry: s3://b/m/missing.csv"):
        load(s3, "s3://b/m.manifest", "csv manifest")


def test_no_file_under_the_prefix_fails_the_copy(s3):
    with pytest.raises(CopyLoadError, match="The specified S3 prefix 'nothing-' does not exist"):
        load(s3, "s3://b/nothing-")
