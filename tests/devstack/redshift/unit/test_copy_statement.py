"""The COPY statement parser, without a server (docs: r_COPY, copy-parameters-*)."""

from __future__ import annotations

import pytest

from devstack.redshift.copy import CopySyntaxError, is_s3_copy, parse_copy

KEYS = "access_key_id 'AKIA' secret_access_key 'secret'"


def copy(options: str, target: str = "s.t") -> str:
    return f"copy {target} from 's3://bucket/prefix/part-' {options}"


# docs: copy-parameters-data-format — CSV: ',' and '"'; otherwise pipe-delimited text;
# copy-parameters-data-conversion — NULL AS '\N', MAXERROR 0
def test_defaults():
    csv = parse_copy(copy(f"{KEYS} csv"))
    assert (csv.csv, csv.delimiter, csv.quote, csv.null_as, csv.maxerror) == (True, ",", '"', "\\N", 0)
    text = parse_copy(copy(KEYS))
    assert (text.csv, text.delimiter) == (False, "|")
    assert (text.schema, text.table, text.columns, text.source) == (
        "s",
        "t",
        None,
        "s3://bucket/prefix/part-",
    )


def test_target_names_fold_like_identifiers():
    spec = parse_copy(f"""copy Sch."MixedCase" (Id, "Name") from 's3://b/k' {KEYS}""")
    assert (spec.schema, spec.table, spec.target_sql, spec.columns) == (
        "sch",
        "MixedCase",
        '"sch"."MixedCase"',
        ["id", "Name"],
    )
    temp = parse_copy(copy(KEYS, target="#stage"))
    assert (temp.schema, temp.table, temp.target_sql) == (None, "#stage", '"#stage"')


def test_the_statement_postgresql_runs_instead():
    spec = parse_copy(f"copy s.t (a, b) from 's3://b/k' {KEYS} csv gzip")
    assert spec.postgres_copy() == """COPY "s"."t" ("a", "b") FROM STDIN WITH (FORMAT csv, NULL E'\\\\N')"""
    # a NULL AS without a backslash cannot be PostgreSQL's marker: '' (unquoted empty) is
    assert parse_copy(copy(f"{KEYS} csv null as 'NULL'")).postgres_copy() == (
        'COPY "s"."t" FROM STDIN WITH (FORMAT csv)'
    )


def test_options():
    spec = parse_copy(
        copy(
            "with credentials as 'aws_iam_role=arn:aws:iam::1:role/r' format as csv quote as '''' "
            "delimiter '|' manifest bzip2 ignoreheader 2 null as '' emptyasnull blanksasnull "
            "dateformat 'DD/MM/YYYY' timeformat 'auto' truncatecolumns acceptinvchars as '^' "
            "maxerror 500000 region 'eu-west-1' compupdate off statupdate on fillrecord roundec "
            "ignoreblanklines trimblanks encoding utf8"
        )
    )
    assert (spec.iam_role, spec.csv, spec.quote, spec.delimiter) == ("arn:aws:iam::1:role/r", True, "'", "|")
    assert (spec.manifest, spec.compression, spec.ignoreheader, spec.null_as) == (True, "bzip2", 2, "")
    assert spec.emptyasnull and spec.blanksasnull and spec.truncatecolumns
    assert (spec.dateformat, spec.timeformat, spec.acceptinvchars) == ("DD/MM/YYYY", "auto", "^")
    assert (spec.maxerror, spec.region) == (100000, "eu-west-1")  # docs: MAXERROR at most 100000
    assert spec.fillrecord and spec.roundec and spec.ignoreblanklines and spec.trimblanks


def test_acceptinvchars_replaces_with_a_question_mark_by_default():
    assert parse_copy(copy(f"{KEYS} acceptinvchars csv")).acceptinvchars == "?"


# docs: copy-parameters-data-conversion — NULL AS '\0' or '\000' is the NUL character
@pytest.mark.parametrize("marker", ["\\0", "\\000"])
def test_null_as_backslash_zero_is_nul(marker):
    assert parse_copy(copy(f"{KEYS} null as '{marker}'")).null_as == "\0"


# docs: copy-parameters-authorization — the four forms
@pytest.mark.parametrize(
    "clause,expected",
    [
        ("iam_role 'arn:r'", ("arn:r", None, None, None)),
        (KEYS, (None, "AKIA", "secret", None)),
        (f"{KEYS} session_token 'tok'", (None, "AKIA", "secret", "tok")),
        ("credentials 'aws_iam_role=arn:r'", ("arn:r", None, None, None)),
        (
            "credentials 'aws_access_key_id=AKIA;aws_secret_access_key=secret;token=tok'",
            (None, "AKIA", "secret", "tok"),
        ),
    ],
)
def test_credentials_forms(clause, expected):
    spec = parse_copy(copy(clause))
    assert (spec.iam_role, spec.access_key_id, spec.secret_access_key, spec.session_token) == expected


@pytest.mark.parametrize(
    "options,message",
    [
        (f"iam_role 'arn:r' {KEYS}", "conflicting or redundant options"),
        ("access_key_id 'AKIA'", "both ACCESS_KEY_ID and SECRET_ACCESS_KEY are required"),
        ("csv", "COPY from S3 needs authorization"),
        ("credentials 'user=x'", "invalid credentials"),
        (f"{KEYS} csv escape", "CSV is not compatible with ESCAPE or REMOVEQUOTES"),
        (f"{KEYS} delimiter '||'", "DELIMITER must be a single character"),
        (f"{KEYS} gzip zstd", "more than one compression"),
        (f"{KEYS} json 'auto'", "JSON is not supported by the local Redshift stand-in"),
        (f"{KEYS} format as parquet", "FORMAT PARQUET is not supported by the local Redshift stand-in"),
        (f"{KEYS} lzop", "LZOP is not supported"),
        (f"{KEYS} fixedwidth 'a:1'", "FIXEDWIDTH"),
        (f"{KEYS} encoding utf16", "ENCODING utf16 is not supported"),
        (f"{KEYS} frobnicate", 'syntax error in COPY at or near "frobnicate"'),
    ],
)
def test_refused_statements_say_why(options, message):
    with pytest.raises(CopySyntaxError, match=message):
        parse_copy(copy(options))


def test_a_missing_table_or_source_is_a_syntax_error():
    with pytest.raises(CopySyntaxError, match="table name expected"):
        parse_copy("copy 's3://b/k'")
    with pytest.raises(CopySyntaxError, match="FROM 's3://...' expected"):
        parse_copy("copy t to 's3://b/k'")


@pytest.mark.parametrize(
    "sql,expected",
    [
        (f"copy t from 's3://b/k' {KEYS}", True),
        (f"  COPY t FROM 'S3://b/k' {KEYS}", True),
        (f"/* load */ copy t from 's3://b/k' {KEYS}", True),
        (f"-- load\ncopy t (a) from E's3://b/k' {KEYS}", True),
        ("copy t from stdin", False),
        ("copy t from '/tmp/file.csv'", False),
        ("select 's3://b/k'", False),
        ("copy (select 1) to stdout", False),
    ],
)
def test_is_s3_copy(sql, expected):
    assert is_s3_copy(sql) is expected
