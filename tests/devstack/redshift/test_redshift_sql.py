"""Redshift SQL semantics where they differ from PostgreSQL, through redshift_connector."""

from __future__ import annotations

import datetime as dt

import pytest

pytestmark = pytest.mark.integration

INT4, FLOAT8 = 23, 701


def query(conn, sql, params=None):
    cur = conn.cursor()
    cur.execute(sql, params)
    return [tuple(r) for r in cur.fetchall()] if cur.description else None, cur.description


def column_types(conn, schema, table):
    rows, _ = query(
        conn,
        "select column_name, data_type, character_maximum_length from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position",
        (schema, table),
    )
    return rows


# docs: r_EXTRACT_function — INTEGER from TIMESTAMP (the fraction dropped),
# DOUBLE PRECISION from TIMESTAMPTZ
def test_extract_returns_integer_from_timestamp_and_double_from_timestamptz(rs_conn):
    rows, description = query(
        rs_conn,
        "select extract(epoch from timestamp '2020-01-01 00:00:01.75'),"
        " extract(second from '2020-01-01 10:00:59.9'::timestamp),"
        " extract(ms from timestamp '2009-09-09 12:08:43.101'),"
        " EXTRACT(epoch FROM timestamptz '2020-01-01 00:00:01.75+00'),"
        " extract(hour from interval '2 hours 30 minutes')",
    )
    assert rows == [(1577836801, 59, 101, 1577836801.75, 2)]
    assert [d[1] for d in description] == [INT4, INT4, INT4, FLOAT8, INT4]


# docs: r_EXTRACT_function — per-user session totals in seconds come out whole
def test_extract_epoch_of_a_timestamp_difference_sums_as_integers(rs_conn, schema):
    query(rs_conn, f"create table {schema}.s (user_id int, started timestamp, ended timestamp)")
    query(
        rs_conn,
        f"insert into {schema}.s values (1, '2024-01-01 10:00:00', '2024-01-01 10:00:01.9'),"
        " (1, '2024-01-01 11:00:00', '2024-01-01 11:00:02.9')",
    )
    rows, _ = query(
        rs_conn, f"select user_id, sum(extract(epoch from ended - started)) from {schema}.s group by 1"
    )
    assert rows == [(1, 3)]


# Not a Redshift behaviour but the stand-in's speed: the compat functions run once
# per row (validation sums extract(epoch ...) over millions of rows). PostgreSQL
# must inline them into native date_part/date_trunc; a compat function left in the
# plan costs ~1 ms a row (20,000 rows took 18 s).
def test_per_row_compat_functions_are_inlined_into_native_calls(rs_conn, schema):
    query(rs_conn, f"create table {schema}.e (ts timestamp, tstz timestamptz, d date)")
    plan, _ = query(
        rs_conn,
        "explain verbose select"
        " extract(epoch from ts), extract(ms from ts), extract(epoch from tstz),"
        " extract(us from tstz), extract(day from d), extract(hour from ts - tstz::timestamp),"
        " extract(second from ts::time), extract(epoch from max(ts)) - extract(epoch from min(ts)),"
        " datediff(day, ts, ts), datediff(hour, tstz, tstz), datediff(week, d, d),"
        " dateadd(day, 1, ts), dateadd(month, 1, tstz), dateadd(quarter, 1, d),"
        " len('x' || ts), nvl2(ts, 1, 2), charindex('1', ts::text), getdate(), sysdate,"
        " convert_timezone('UTC', 'Europe/Paris', ts)"
        f" from {schema}.e group by ts, tstz, d",
    )
    text = "\n".join(r[0] for r in plan)
    for name in (
        "rs_extract",
        "datediff",
        "dateadd",
        "rs_datepart",
        "len(",
        "nvl2",
        "charindex",
        "getdate",
        "rs_sysdate",
        "convert_timezone",
    ):
        assert name not in text, f"{name} is called per row, not inlined:\n{text}"


@pytest.mark.perf
def test_extract_over_many_rows_is_as_fast_as_native_date_part(rs_conn, redshift, schema):
    import psycopg2

    query(rs_conn, f"create table {schema}.e (ts timestamp)")
    rs_conn.commit()
    # generate_series over a user table is leader-node only on Redshift, refused by the
    # stand-in (test_redshift_refusals.py): the rows go in through the backend
    backend = psycopg2.connect(redshift.backend.dsn(redshift.database))
    with backend, backend.cursor() as cursor:
        cursor.execute(
            f"insert into {schema}.e select timestamp '2024-01-01' + i * interval '1.5 s'"
            " from generate_series(1, 100000) i"
        )
    backend.close()
    query(rs_conn, "set statement_timeout = 10000")  # ~100 s before the functions were inlined
    rows, _ = query(rs_conn, f"select sum(extract(epoch from ts)), sum(extract(ms from ts)) from {schema}.e")
    # every odd row is at .5 s: the fraction is truncated per row (INTEGER), 500 ms each
    assert rows == [(1_704_067_200 * 100000 + 7_500_050_000, 50000 * 500)]
    rs_conn.rollback()


# docs: r_Character_types — VARCHAR(n) counts bytes; an over-long INSERT fails
def test_varchar_length_counts_bytes_on_insert(rs_conn, schema):
    import redshift_connector

    query(rs_conn, f"create table {schema}.t (name varchar(5))")
    query(rs_conn, f"insert into {schema}.t values ('abcde'), ('éé')")  # 5 and 4 bytes
    rs_conn.commit()
    with pytest.raises(redshift_connector.ProgrammingError) as failure:
        query(rs_conn, f"insert into {schema}.t values ('ééé')")  # 3 characters, 6 bytes
    assert failure.value.args[0]["M"] == "value too long for type character varying(5)"
    assert failure.value.args[0]["C"] == "22001"
    rs_conn.rollback()


# docs: r_Character_types — TEXT is VARCHAR(256), BPCHAR is CHAR(256),
# VARCHAR(MAX) is 65535, CHAR(MAX) is 4096, longer than 65535 is refused
def test_text_and_max_lengths(rs_conn, schema):
    import redshift_connector

    query(
        rs_conn,
        f"create table {schema}.t (a text, b varchar, c varchar(max), "
        "d character varying(max), e char(max), f bpchar, g nvarchar(10))",
    )
    assert column_types(rs_conn, schema, "t") == [
        ("a", "character varying", 256),
        ("b", "character varying", 256),
        ("c", "character varying", 65535),
        ("d", "character varying", 65535),
        ("e", "character", 4096),
        ("f", "character", 256),
        ("g", "character varying", 10),
    ]
    with pytest.raises(redshift_connector.ProgrammingError, match="value too long"):
        query(rs_conn, f"insert into {schema}.t (a) values (repeat('x', 257))")
    rs_conn.rollback()
    with pytest.raises(redshift_connector.ProgrammingError, match="cannot exceed 65535"):
        query(rs_conn, f"create table {schema}.big (v varchar(65536))")
    rs_conn.rollback()


# docs: t_Defining_constraints — PRIMARY KEY and UNIQUE are informational: duplicates
# load, and the key is still reported (RedshiftSQLHook.get_table_primary_key)
def test_primary_key_and_unique_are_not_enforced_but_reported(rs_conn, schema, stack_env):
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    query(rs_conn, f"create table {schema}.t (id int primary key, code varchar(3) unique)")
    query(rs_conn, f"insert into {schema}.t values (1, 'a'), (1, 'a')")
    query(rs_conn, f"create table {schema}.u (id int, constraint u_pk primary key (id))")
    query(rs_conn, f"alter table {schema}.u add constraint u_id unique (id)")
    query(rs_conn, f"insert into {schema}.u values (7), (7)")
    rs_conn.commit()
    assert query(rs_conn, f"select count(*) from {schema}.t")[0] == [(2,)]
    assert query(rs_conn, f"select count(*) from {schema}.u")[0] == [(2,)]
    assert RedshiftSQLHook().get_table_primary_key("t", schema) == ["id"]


# docs: r_CREATE_TABLE_NEW — DISTSTYLE, DISTKEY, SORTKEY (COMPOUND, INTERLEAVED, AUTO),
# ENCODE, IDENTITY(seed, step), BACKUP NO are accepted
def test_redshift_ddl_is_accepted(rs_conn, schema):
    statements = [
        f"""create table if not exists {schema}.a (
              id bigint identity(100, 5) encode az64,
              user_id int not null encode raw distkey,
              name varchar(max) encode lzo,
              at timestamp sortkey
            ) diststyle key compound sortkey(user_id, at) backup no""",
        f"create table {schema}.b (id int, v varchar(10)) diststyle even interleaved sortkey(id, v)",
        f"create table {schema}.c (id int) diststyle all sortkey auto encode auto",
        f"create table {schema}.d distkey(id) sortkey(id) as select 1 as id",
        f"create table {schema}.e (id int generated by default as identity(1, 1), v int) diststyle auto",
    ]
    for sql in statements:
        query(rs_conn, sql)
    query(
        rs_conn, f"insert into {schema}.a (user_id, name, at) values (1, 'x', getdate()), (2, 'y', sysdate)"
    )
    query(rs_conn, f"insert into {schema}.e (v) values (10), (20)")
    assert query(rs_conn, f"select id from {schema}.a order by id")[0] == [(100,), (105,)]
    assert query(rs_conn, f"select id, v from {schema}.e order by id")[0] == [(1, 10), (2, 20)]
    rs_conn.commit()


# docs: r_CREATE_TABLE_NEW (#table_name, LIKE ... INCLUDING DEFAULTS) — session temp tables
def test_hash_temp_tables_are_session_local(rs_conn, redshift, schema):
    import redshift_connector

    query(rs_conn, f"create table {schema}.t (id int default 7, v varchar(3))")
    query(rs_conn, f"create table #stage (like {schema}.t including defaults)")
    query(rs_conn, "insert into #stage (v) values ('abc')")
    assert query(rs_conn, "select #stage.id, v from #stage")[0] == [(7, "abc")]
    rs_conn.commit()
    other = redshift_connector.connect(**redshift.connect_kwargs())
    try:
        with pytest.raises(redshift_connector.ProgrammingError, match="does not exist"):
            other.cursor().execute("select * from #stage")
    finally:
        other.close()


# docs: r_GETDATE, r_SYSDATE, r_DATEDIFF_function (boundaries crossed), r_NVL_function,
# r_LEN, r_DATEADD_function
def test_date_and_null_functions(rs_conn):
    rows, description = query(
        rs_conn,
        "select datediff(year, '2020-12-31'::date, '2021-01-01'::date),"
        " datediff(day, '2021-01-01 23:59'::timestamp, '2021-01-02 00:01'::timestamp),"
        " datediff(hours, '2021-01-01 10:59'::timestamp, '2021-01-01 11:00'::timestamp),"
        " datediff(month, '2021-01-31', '2021-02-01'),"
        " nvl(null, 'fallback'), nvl2(null, 'a', 'b'), len('abc  '::char(6)), len('héllo'),"
        " dateadd(month, 1, '2020-01-31'::date),"
        " getdate() = date_trunc('second', getdate()),"
        " sysdate = sysdate, pg_typeof(sysdate)::text",
    )
    assert rows == [
        (
            1,
            1,
            1,
            1,
            "fallback",
            "b",
            3,
            5,
            dt.datetime(2020, 2, 29),
            True,
            True,
            "timestamp without time zone",
        )
    ]


# docs: r_MERGE — MERGE INTO ... USING ... WHEN MATCHED / WHEN NOT MATCHED
def test_merge(rs_conn, schema):
    query(rs_conn, f"create table {schema}.target (id int, v varchar(5))")
    query(rs_conn, f"create table {schema}.source (id int, v varchar(5))")
    query(rs_conn, f"insert into {schema}.target values (1, 'old'), (2, 'keep')")
    query(rs_conn, f"insert into {schema}.source values (1, 'new'), (3, 'add')")
    query(
        rs_conn,
        f"merge into {schema}.target using {schema}.source s on target.id = s.id "
        "when matched then update set v = s.v "
        "when not matched then insert values (s.id, s.v)",
    )
    assert query(rs_conn, f"select id, v from {schema}.target order by id")[0] == [
        (1, "new"),
        (2, "keep"),
        (3, "add"),
    ]
    rs_conn.rollback()


# docs: r_STL_LOAD_ERRORS, r_SVV_EXTERNAL_SCHEMAS, r_SVV_TABLE_INFO, r_PG_TABLE_DEF —
# the system objects the driver's metadata calls and a load check read
def test_system_tables_and_driver_metadata(rs_conn, schema):
    query(rs_conn, f"create table {schema}.meta (id int, name varchar(12))")
    rs_conn.commit()
    cur = rs_conn.cursor()
    tables = cur.get_tables(schema_pattern=schema, table_name_pattern="meta")
    assert [(t[1], t[2]) for t in tables] == [(schema, "meta")]
    columns = cur.get_columns(schema_pattern=schema, tablename_pattern="meta")
    assert [(c[3], c[6]) for c in columns] == [("id", 10), ("name", 12)]
    assert query(rs_conn, "select count(*) from svv_external_schemas")[0] == [(0,)]
    assert query(rs_conn, f"select \"table\" from svv_table_info where schema = '{schema}'")[0] == [("meta",)]
    query(rs_conn, f"set search_path to {schema}")
    assert query(rs_conn, "select \"column\", type from pg_table_def where tablename = 'meta'")[0] == [
        ("id", "integer"),
        ("name", "character varying(12)"),
    ]
    _, description = query(rs_conn, "select * from stl_load_errors limit 0")
    assert [d[0] for d in description][:16] == [
        "userid",
        "slice",
        "tbl",
        "starttime",
        "session",
        "query",
        "filename",
        "line_number",
        "colname",
        "type",
        "col_length",
        "position",
        "raw_line",
        "raw_field_value",
        "err_code",
        "err_reason",
    ]


# docs: r_EXTRACT_function etc. via psycopg2 — the simple protocol is rewritten too
def test_rewrites_apply_to_psycopg2(pg_conn, schema):
    cur = pg_conn.cursor()
    cur.execute(
        "create table #p (ts timestamp); insert into #p values ('2020-01-01 10:30:59.9');"
        " select extract(second from ts), datediff(minute, ts, ts + interval '1 second') from #p"
    )
    assert cur.fetchall() == [(59, 1)]


# docs: r_DATEDIFF_function, r_DATEADD_function — a date part the function does not
# take is an error (it came back NULL when the check sat after a plpgsql RETURN)
@pytest.mark.parametrize("call", ["datediff(epoch, ts, ts)", "dateadd(dow, 1, ts)"])
def test_an_unsupported_date_part_is_an_error(rs_conn, call):
    import redshift_connector

    with pytest.raises(redshift_connector.ProgrammingError, match="datepart .* is not supported"):
        query(rs_conn, f"select {call} from (select timestamp '2024-01-01' as ts) t")
    rs_conn.rollback()


# docs: r_STRTOL — a string of digits in a base as BIGINT; the pipeline probes it to tell
# Redshift from PostgreSQL (tracking_sync.validate.dialect) and sums STRTOL(hex, 16) in its drill-down
def test_strtol(rs_conn):
    rows, _ = query(
        rs_conn,
        "select strtol('ff', 16), strtol('0xf', 16), strtol('abcd1234', 16), strtol('110101', 2), "
        "strtol('-17', 10), strtol('zz', 36), strtol('7fffffffffffffff', 16)",
    )
    assert rows == [(255, 15, 2882343476, 53, -17, 1295, 9223372036854775807)]
    rs_conn.rollback()


def test_the_pipeline_takes_the_stand_in_for_redshift(rs_conn):
    from tracking_sync.validate.dialect import engine_dialect

    assert engine_dialect(rs_conn) == "redshift"
