"""COPY FROM 's3://...' through the stand-in, as Redshift loads it (docs: r_COPY)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

pytestmark = pytest.mark.integration


def run(conn, sql, params=None):
    cur = conn.cursor()
    cur.execute(sql, params)
    return cur


def rows(conn, sql):
    cur = conn.cursor()
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()]


def load_errors(conn, filename_prefix):
    cur = conn.cursor()
    cur.execute(
        "select trim(colname), line_number, err_code, trim(err_reason), trim(raw_field_value), "
        "trim(filename), trim(raw_line) from stl_load_errors where filename like %s "
        "order by line_number",
        (filename_prefix + "%",),
    )
    return [tuple(r) for r in cur.fetchall()]


# docs: r_COPY (Using a key prefix) — every object whose key starts with the prefix
def test_copy_loads_every_object_under_the_key_prefix(rs_conn, schema, files):
    run(rs_conn, f"create table {schema}.t (id int, name varchar(20))")
    files.put("part-000.csv", "1,a\n2,b\n")
    files.put("part-001.csv", "3,c\n")
    files.put("other.csv", "9,not me\n")
    run(rs_conn, f"copy {schema}.t from '{files.url('part-')}' {files.keys_clause} csv")
    rs_conn.commit()
    assert rows(rs_conn, f"select id, name from {schema}.t order by id") == [(1, "a"), (2, "b"), (3, "c")]


# docs: r_COPY — COPY fails when the prefix matches no object
def test_copy_from_an_empty_prefix_fails(rs_conn, schema, files):
    import redshift_connector

    run(rs_conn, f"create table {schema}.t (id int)")
    rs_conn.commit()
    with pytest.raises(redshift_connector.ProgrammingError, match="does not exist"):
        run(rs_conn, f"copy {schema}.t from '{files.url('nothing-')}' {files.keys_clause} csv")
    rs_conn.rollback()


# docs: loading-data-files-using-manifest — exactly the listed files; mandatory
def test_manifest_loads_listed_files_and_enforces_mandatory(rs_conn, schema, files):
    import redshift_connector

    run(rs_conn, f"create table {schema}.t (id int)")
    rs_conn.commit()
    a = files.put("data/a.csv", "1\n")
    files.put("data/b.csv", "2\n")  # under the same prefix, not listed: not loaded
    missing = files.url("data/missing.csv")
    optional = files.put_manifest("optional.manifest", [(a, True), (missing, False)])
    run(rs_conn, f"copy {schema}.t from '{optional}' {files.keys_clause} csv manifest")
    rs_conn.commit()
    assert rows(rs_conn, f"select id from {schema}.t") == [(1,)]
    mandatory = files.put_manifest("mandatory.manifest", [(a, True), (missing, True)])
    with pytest.raises(redshift_connector.ProgrammingError, match="mandatory"):
        run(rs_conn, f"copy {schema}.t from '{mandatory}' {files.keys_clause} csv manifest")
    rs_conn.rollback()
    assert rows(rs_conn, f"select id from {schema}.t") == [(1,)]


# docs: copy-parameters-file-compression — GZIP, BZIP2, ZSTD; IGNOREHEADER per file
@pytest.mark.parametrize("compression", ["gzip", "bzip2", "zstd"])
def test_compressed_files_with_a_header_each(rs_conn, schema, files, compression):
    run(rs_conn, f"create table {schema}.t (id int, name varchar(10))")
    files.put(f"{compression}-1", "id,name\n1,x\n", compression)
    files.put(f"{compression}-2", "id,name\n2,y\n", compression)
    run(
        rs_conn,
        f"copy {schema}.t from '{files.url(compression)}' {files.keys_clause} "
        f"csv ignoreheader 1 {compression}",
    )
    rs_conn.commit()
    assert rows(rs_conn, f"select id, name from {schema}.t order by id") == [(1, "x"), (2, "y")]


# docs: copy-parameters-data-conversion — '\N' is the default NULL AS; an empty
# unquoted CSV field is '' for CHAR/VARCHAR (NULL for other types) unless EMPTYASNULL
def test_empty_fields_and_the_default_null_marker(rs_conn, schema, files):
    run(rs_conn, f"create table {schema}.t (id int, name varchar(10), n int)")
    files.put("nulls.csv", '1,,\n2,\\N,\\N\n3,"",7\n')
    run(rs_conn, f"copy {schema}.t from '{files.url('nulls')}' {files.keys_clause} csv")
    run(rs_conn, f"create table {schema}.e (id int, name varchar(10), n int)")
    run(rs_conn, f"copy {schema}.e from '{files.url('nulls')}' {files.keys_clause} csv emptyasnull")
    rs_conn.commit()
    assert rows(rs_conn, f"select id, name, n from {schema}.t order by id") == [
        (1, "", None),
        (2, None, None),
        (3, "", 7),
    ]
    assert rows(rs_conn, f"select id, name, n from {schema}.e order by id") == [
        (1, None, None),
        (2, None, None),
        (3, None, 7),
    ]


# docs: copy-parameters-data-conversion — NULL AS, BLANKSASNULL, DELIMITER, QUOTE
def test_null_as_blanksasnull_delimiter_and_quote(rs_conn, schema, files):
    run(rs_conn, f"create table {schema}.t (id int, name varchar(10))")
    files.put("piped.txt", "1|NULL\n2|   \n3|'a|b'\n")
    run(
        rs_conn,
        f"copy {schema}.t from '{files.url('piped')}' {files.keys_clause} "
        "csv delimiter '|' quote as '''' null as 'NULL' blanksasnull",
    )
    rs_conn.commit()
    assert rows(rs_conn, f"select id, name from {schema}.t order by id") == [(1, None), (2, None), (3, "a|b")]


# docs: copy-parameters-data-conversion — NULL AS '\0' or '\000' names the NUL
# character: a field holding only NUL loads as NULL (not the two characters \0)
@pytest.mark.parametrize(
    "marker,options",
    [
        ("\\0", "csv"),
        ("\\000", "csv"),
        ("\\0", "delimiter '|'"),
        ("\\000", ""),
    ],
)
def test_null_as_backslash_zero_is_the_nul_character(rs_conn, schema, files, marker, options):
    run(rs_conn, f"create table {schema}.t (id int, name varchar(10), n int)")
    sep = "," if "csv" in options else "|"
    files.put("nul.txt", sep.join(["1", "\0", "\0"]) + "\n" + sep.join(["2", "\\0", "5"]) + "\n")
    run(
        rs_conn, f"copy {schema}.t from '{files.url('nul')}' {files.keys_clause} {options} null as '{marker}'"
    )
    rs_conn.commit()
    assert rows(rs_conn, f"select id, name, n from {schema}.t order by id") == [
        (1, None, None),
        (2, "\\0", 5),
    ]


# docs: copy-parameters-data-format — without CSV, pipe-delimited text
def test_default_text_format_is_pipe_delimited(rs_conn, schema, files):
    run(rs_conn, f"create table {schema}.t (id int, name varchar(10))")
    files.put("text.txt", "1|a,b\n2|\\N\n")
    run(rs_conn, f"copy {schema}.t from '{files.url('text')}' {files.keys_clause}")
    rs_conn.commit()
    assert rows(rs_conn, f"select id, name from {schema}.t order by id") == [(1, "a,b"), (2, None)]


# docs: copy-parameters-data-conversion (DATEFORMAT, TIMEFORMAT: explicit, 'auto', epochsecs)
def test_dateformat_and_timeformat(rs_conn, schema, files):
    run(rs_conn, f"create table {schema}.t (id int, d date, ts timestamp)")
    files.put("explicit.csv", "1,31/12/2023,2023-12-31 23:59:58\n")
    run(
        rs_conn,
        f"copy {schema}.t from '{files.url('explicit')}' {files.keys_clause} csv "
        "dateformat 'DD/MM/YYYY' timeformat 'YYYY-MM-DD HH:MI:SS'",
    )
    files.put("auto.csv", "2,Dec 30 2023,12/30/2023 10:11:12\n")
    run(
        rs_conn,
        f"copy {schema}.t from '{files.url('auto')}' {files.keys_clause} csv "
        "dateformat 'auto' timeformat 'auto'",
    )
    files.put("epoch.csv", "3,2024-01-01,1704067200\n")
    run(
        rs_conn, f"copy {schema}.t from '{files.url('epoch')}' {files.keys_clause} csv timeformat 'epochsecs'"
    )
    rs_conn.commit()
    assert rows(rs_conn, f"select id, d, ts from {schema}.t order by id") == [
        (1, dt.date(2023, 12, 31), dt.datetime(2023, 12, 31, 23, 59, 58)),
        (2, dt.date(2023, 12, 30), dt.datetime(2023, 12, 30, 10, 11, 12)),
        (3, dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 0)),
    ]


# docs: copy-parameters-data-conversion — a date not in DATEFORMAT is a load error
def test_a_date_in_the_wrong_format_is_rejected(rs_conn, schema, files):
    import redshift_connector

    run(rs_conn, f"create table {schema}.t (id int, d date)")
    rs_conn.commit()
    url = files.put("wrongdate.csv", "1,12/31/2023\n")
    with pytest.raises(redshift_connector.ProgrammingError, match="Load into table 't' failed"):
        run(rs_conn, f"copy {schema}.t from '{url}' {files.keys_clause} csv")
    rs_conn.rollback()
    assert load_errors(rs_conn, url)[0][:3] == ("d", 1, 1205)


# docs: r_Boolean_type — t/true/y/yes/1 and f/false/n/no/0; not 'on' or prefixes
def test_boolean_input_forms(rs_conn, schema, files):
    run(rs_conn, f"create table {schema}.t (id int, b boolean)")
    files.put("bools.csv", "1,TRUE\n2,t\n3,yes\n4,Y\n5,1\n6,false\n7,N\n8,no\n9,0\n10,f\n")
    run(rs_conn, f"copy {schema}.t from '{files.url('bools')}' {files.keys_clause} csv")
    url = files.put("on.csv", "11,on\n12,tr\n13,true\n")
    run(rs_conn, f"copy {schema}.t from '{url}' {files.keys_clause} csv maxerror 5")
    rs_conn.commit()
    assert rows(rs_conn, f"select b from {schema}.t order by id") == [(True,)] * 5 + [(False,)] * 5 + [
        (True,)
    ]
    assert [e[4] for e in load_errors(rs_conn, url)] == ["on", "tr"]


# docs: copy-parameters-data-conversion — excess decimal places are truncated, not rounded
def test_decimals_are_truncated_not_rounded(rs_conn, schema, files):
    run(rs_conn, f"create table {schema}.t (id int, amount decimal(10,2))")
    files.put("dec.csv", "1,20.259\n2,-1.999\n")
    run(rs_conn, f"copy {schema}.t from '{files.url('dec')}' {files.keys_clause} csv")
    rs_conn.commit()
    assert rows(rs_conn, f"select amount from {schema}.t order by id") == [
        (Decimal("20.25"),),
        (Decimal("-1.99"),),
    ]


# docs: r_Character_types, copy-parameters-data-conversion (TRUNCATECOLUMNS) —
# VARCHAR(n) holds n bytes; longer fails the load unless TRUNCATECOLUMNS
def test_varchar_length_is_in_bytes_and_truncatecolumns(rs_conn, schema, files):
    import redshift_connector

    run(rs_conn, f"create table {schema}.t (id int, name varchar(5))")
    rs_conn.commit()
    url = files.put("long.csv", "1,ééé\n")  # 3 characters, 6 bytes
    with pytest.raises(redshift_connector.ProgrammingError, match="Check 'stl_load_errors'"):
        run(rs_conn, f"copy {schema}.t from '{url}' {files.keys_clause} csv")
    rs_conn.rollback()
    error = load_errors(rs_conn, url)[0]
    assert error[:3] == ("name", 1, 1204) and error[4] == "ééé"
    run(rs_conn, f"copy {schema}.t from '{url}' {files.keys_clause} csv truncatecolumns")
    rs_conn.commit()
    assert rows(rs_conn, f"select name from {schema}.t") == [("éé",)]  # cut at a character boundary


# docs: copy-parameters-data-conversion (ACCEPTINVCHARS)
def test_invalid_utf8_is_rejected_unless_acceptinvchars(rs_conn, schema, files):
    import redshift_connector

    run(rs_conn, f"create table {schema}.t (id int, name varchar(10))")
    rs_conn.commit()
    url = files.put("latin1.csv", "1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(redshift_connector.ProgrammingError, match="Load into table"):
        run(rs_conn, f"copy {schema}.t from '{url}' {files.keys_clause} csv")
    rs_conn.rollback()
    assert load_errors(rs_conn, url)[0][2] == 1220
    run(rs_conn, f"copy {schema}.t from '{url}' {files.keys_clause} csv acceptinvchars")
    run(rs_conn, f"copy {schema}.t from '{url}' {files.keys_clause} csv acceptinvchars as '^'")
    rs_conn.commit()
    assert rows(rs_conn, f"select name from {schema}.t order by name") == [("caf?",), ("caf^",)]


# docs: copy-parameters-data-load (MAXERROR), r_STL_LOAD_ERRORS
def test_maxerror_skips_bad_rows_and_records_them(rs_conn, schema, files):
    import redshift_connector

    run(rs_conn, f"create table {schema}.t (id int, name varchar(10))")
    rs_conn.commit()
    url = files.put("bad.csv", "1,a\nx,b\n3,c\n4,d,extra\n")
    run(rs_conn, f"copy {schema}.t from '{url}' {files.keys_clause} csv maxerror 2")
    rs_conn.commit()
    assert rows(rs_conn, f"select id from {schema}.t order by id") == [(1,), (3,)]
    errors = load_errors(rs_conn, url)
    assert [(e[0], e[1], e[2], e[5]) for e in errors] == [("id", 2, 1207, url), ("", 4, 1202, url)]
    assert errors[0][6] == "x,b"
    with pytest.raises(redshift_connector.ProgrammingError, match="Load into table 't' failed"):
        run(rs_conn, f"copy {schema}.t from '{url}' {files.keys_clause} csv maxerror 1")
    rs_conn.rollback()
    assert rows(rs_conn, f"select count(*) from {schema}.t") == [(2,)]


# docs: r_COPY (atomic), r_STL_LOAD_ERRORS — a failed COPY loads nothing, aborts the
# transaction, and its stl_load_errors rows survive the rollback; the client error
# reads like Redshift's
def test_failed_copy_is_atomic_and_its_errors_survive_the_rollback(rs_conn, schema, files):
    import redshift_connector

    run(rs_conn, f"create table {schema}.t (id int, name varchar(10))")
    rs_conn.commit()
    url = files.put("half-bad.csv", "1,a\n2,b\nthree,c\n")
    run(rs_conn, f"insert into {schema}.t values (0, 'before')")
    with pytest.raises(redshift_connector.ProgrammingError) as failure:
        run(rs_conn, f"copy {schema}.t from '{url}' {files.keys_clause} csv")
    error = failure.value.args[0]
    assert error["C"] == "XX000"
    assert error["M"] == ("Load into table 't' failed. Check 'stl_load_errors' system table for details.")
    with pytest.raises(redshift_connector.ProgrammingError, match="current transaction is aborted"):
        run(rs_conn, "select 1")
    rs_conn.rollback()
    assert rows(rs_conn, f"select count(*) from {schema}.t") == [(0,)]
    assert load_errors(rs_conn, url) == [
        ("id", 3, 1207, "Invalid digit, Value 't', Pos 0, Type: Integer", "three", url, "three,c")
    ]
    tbl = rows(
        rs_conn,
        f"select distinct e.tbl = '{schema}.t'::regclass::oid::int "
        f"from stl_load_errors e where filename = '{url}'",
    )
    assert tbl == [(True,)]


# docs: copy-parameters-authorization — the four ways to authorize, mutually exclusive
def test_credentials_forms(rs_conn, schema, files):
    import redshift_connector

    run(rs_conn, f"create table {schema}.t (id int)")
    rs_conn.commit()
    url = files.put("one.csv", "1\n")
    role = "arn:aws:iam::123456789012:role/load"
    keys = f"aws_access_key_id={files.access_key_id};aws_secret_access_key={files.secret_access_key}"
    for clause in (
        f"credentials 'aws_iam_role={role}'",
        f"credentials '{keys}'",
        f"credentials '{keys};token=session-token'",
        f"iam_role '{role}'",
        f"{files.keys_clause} session_token 'tok'",
        f"with credentials as '{keys}' region 'us-east-1'",
    ):
        run(rs_conn, f"copy {schema}.t from '{url}' {clause} csv")
    rs_conn.commit()
    assert rows(rs_conn, f"select count(*) from {schema}.t") == [(6,)]
    for clause, message in (
        (f"iam_role '{role}' {files.keys_clause}", "conflicting"),
        (f"access_key_id '{files.access_key_id}'", "SECRET_ACCESS_KEY"),
        ("", "authorization"),
    ):
        with pytest.raises(redshift_connector.ProgrammingError, match=message):
            run(rs_conn, f"copy {schema}.t from '{url}' {clause} csv")
        rs_conn.rollback()


# docs: r_COPY — psycopg2 (simple protocol), COPY among other statements, #temp target
def test_copy_through_psycopg2_into_a_temp_table(pg_conn, schema, files):
    import psycopg2

    url = files.put("simple.csv", "1,a\n2,b\n")
    cur = pg_conn.cursor()
    cur.execute(
        f"create table #stage (id int, name varchar(10)); "
        f"copy #stage from '{url}' {files.keys_clause} csv; "
        "select count(*) from #stage"
    )
    assert cur.fetchall() == [(2,)]
    bad = files.put("simple-bad.csv", "1,a\nx,b\n")
    with pytest.raises(psycopg2.errors.InternalError_, match="Load into table '#stage' failed"):
        cur.execute(f"copy #stage from '{bad}' {files.keys_clause} csv")
    pg_conn.rollback()


# docs: r_COPY — the statement the provider's S3ToRedshiftOperator sends, cached by
# the driver and executed again (Bind/Execute on the named statement)
def test_the_same_copy_statement_runs_twice_on_one_cursor(rs_conn, schema, files):
    run(rs_conn, f"create table {schema}.t (id int)")
    url = files.put("twice.csv", "1\n2\n")
    cur = rs_conn.cursor()
    sql = f"copy {schema}.t from '{url}' {files.keys_clause} csv"
    cur.execute(sql)
    cur.execute(sql)
    rs_conn.commit()
    assert rows(rs_conn, f"select count(*) from {schema}.t") == [(4,)]


# docs: t_Defining_constraints — NOT NULL is enforced: the row is a load error
def test_missing_value_for_not_null_column_is_a_load_error(rs_conn, schema, files):
    run(rs_conn, f"create table {schema}.t (id int not null, name varchar(5))")
    url = files.put("notnull.csv", "1,a\n,b\n")
    run(rs_conn, f"copy {schema}.t from '{url}' {files.keys_clause} csv maxerror 1")
    rs_conn.commit()
    assert rows(rs_conn, f"select id from {schema}.t") == [(1,)]
    assert load_errors(rs_conn, url)[0][:3] == ("id", 2, 1213)


# The stand-in's row fast path (valid rows passed on without per-field conversion,
# quoted in batches) must load exactly what the per-field path loads: awkward
# strings, NULL markers inside and around values, a rejected row between fast
# ones (MAXERROR), row order, and a smallint overflow as a load error (docs:
# copy-parameters-data-conversion, r_STL_LOAD_ERRORS).
def test_fast_and_slow_rows_load_the_same_values(rs_conn, schema, files):
    from devstack.redshift.copy import TargetColumn, parse_copy, row_pattern

    run(
        rs_conn,
        f"create table {schema}.t (id int not null, small smallint, name varchar(30),"
        " ts timestamp, ok boolean, note varchar(30))",
    )
    lines = [
        "1,1,plain,2024-01-02 03:04:05.123456,t,x",
        '2,\\N,"a ""quoted"", text",2024-02-28 00:00:00,FALSE,\\N',
        '3,2,"\\N",\\N,yes,"x,""\\N"",y"',  # a quoted \N is NULL too, as before
        '4,3,"multi\nline\r\nvalue",2024-02-29 12:00:00,n,"\\N\\N"',  # 29 Feb: slow path
        "5,99999,too big,2024-01-01,t,x",  # smallint overflow: rejected
        '6,4,"",2024-13-01,t,x',  # month 13: rejected
        '7,5,héllo ünïcode,2024-12-31 23:59:59,1,",\\N,"',
        '8,-6,\\\\N,2024-06-30,0,""',
    ]
    files.put("mixed.csv", "\n".join(lines) + "\n", compression="gzip")
    run(rs_conn, f"copy {schema}.t from '{files.url('mixed')}' {files.keys_clause} csv gzip maxerror 5")
    rs_conn.commit()
    assert rows(rs_conn, f"select id, small, name, ts, ok, note from {schema}.t order by id") == [
        (1, 1, "plain", dt.datetime(2024, 1, 2, 3, 4, 5, 123456), True, "x"),
        (2, None, 'a "quoted", text', dt.datetime(2024, 2, 28), False, None),
        (3, 2, None, None, True, 'x,"\\N",y'),
        (4, 3, "multi\nline\r\nvalue", dt.datetime(2024, 2, 29, 12), False, "\\N\\N"),
        (7, 5, "héllo ünïcode", dt.datetime(2024, 12, 31, 23, 59, 59), True, ",\\N,"),
        (8, -6, "\\\\N", dt.datetime(2024, 6, 30), False, ""),
    ]
    errors = load_errors(rs_conn, files.url("mixed"))
    # the line where each rejected row starts (row 4 spans three lines)
    assert [(e[0], e[1], e[2]) for e in errors] == [("small", 7, 1216), ("ts", 8, 1206)]
    # the pipeline's kind of table takes the fast path
    spec = parse_copy(f"copy {schema}.t from '{files.url('mixed')}' iam_role 'arn:x' csv gzip")
    columns = [
        TargetColumn("id", "int4", -1, True, "integer"),
        TargetColumn("name", "varchar", 104, False, "character varying(100)"),
        TargetColumn("ts", "timestamp", -1, True, "timestamp without time zone"),
        TargetColumn("ok", "bool", -1, False, "boolean"),
    ]
    assert row_pattern(columns, spec) is not None


# The pipeline's own COPY (MANIFEST FORMAT CSV ZSTD NULL AS '\N' TIMEFORMAT 'auto'):
# the exporter's lines go to PostgreSQL as they are, the others field by field, and
# the table holds what Redshift's rules give either way — a quoted "\N" is NULL,
# '' stays '', offsets are honoured, line breaks inside values survive — with the
# bad rows in stl_load_errors on the lines they start on (docs: r_COPY,
# copy-parameters-data-conversion, r_STL_LOAD_ERRORS).
def test_the_pipelines_copy_options_load_passed_through_and_converted_rows_alike(rs_conn, schema, files):
    run(
        rs_conn,
        f"create table {schema}.t (id int not null, ts timestamptz not null, ok boolean,"
        " q varchar(65535), n int)",
    )
    lines = [
        '1,2025-01-01 12:00:00.5+00,t,"",\\N',
        '2,2025-01-01 14:00:00+02,f,"a ""b"", c",7',
        '3,2025-01-01 12:00:00+00,\\N,"line\r\nbreak",8',
        '4,2025-01-01 12:00:00+00,yes,"multi\nline",9',
        '5,2025-01-01 12:00:00+00,t,"\\N",',  # quoted \N: NULL; empty int: NULL
        "6,2025-01-01 12:00:00+00,on,x,1",  # 'on': rejected
        "7,2025-02-30 12:00:00+00,t,x,1",  # no 30 February: rejected
        '8,2025-01-01 12:00:00+00,1,"é",\\N',
    ]
    part = files.put("part-0000.csv.zst", "\n".join(lines) + "\n", "zstd")
    manifest = files.put_manifest("manifest.json", [(part, True)])
    run(
        rs_conn,
        f"copy {schema}.t from '{manifest}' {files.keys_clause} manifest format as csv zstd "
        "null as '\\N' timeformat 'auto' maxerror 2",
    )
    rs_conn.commit()
    noon = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
    got = rows(rs_conn, f"select id, ts at time zone 'UTC', ok, q, n from {schema}.t order by id")
    assert got == [
        (1, dt.datetime(2025, 1, 1, 12, 0, 0, 500000), True, "", None),
        (2, dt.datetime(2025, 1, 1, 12), False, 'a "b", c', 7),
        (3, noon.replace(tzinfo=None), None, "line\r\nbreak", 8),
        (4, noon.replace(tzinfo=None), True, "multi\nline", 9),
        (5, noon.replace(tzinfo=None), True, None, None),
        (8, noon.replace(tzinfo=None), True, "é", None),
    ]
    # rows 3 and 4 span two lines each (csv.reader counts \r\n inside quotes as one)
    assert [e[:3] for e in load_errors(rs_conn, part)] == [("ok", 8, 1210), ("ts", 9, 1206)]
