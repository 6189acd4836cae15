"""What Redshift refuses, the stand-in refuses, with Redshift's kind of error, through the real
clients; and TRUNCATE commits the open transaction, as it does on Redshift.

Each test names the page of the Redshift Database Developer Guide it follows
(docs.aws.amazon.com/redshift/latest/dg/<page>). Each would fail if the stand-in ran the
statement on PostgreSQL: PostgreSQL runs all of them. Each refusal leaves the transaction
failed, as the error does on Redshift, so the tests roll back after it.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

LEADER_NODE = "Specified types or functions (one per INFO message) not supported on Redshift tables."


def run(conn, sql: str, params=None):
    cur = conn.cursor()
    cur.execute(sql, params)
    return [tuple(row) for row in cur.fetchall()] if cur.description else None


def refused(conn, sql: str, params=None) -> dict:
    """The error fields (C code, M message, D detail, H hint) of a statement that must fail."""
    import psycopg2

    with pytest.raises(psycopg2.Error) as failure:
        run(conn, sql, params)
    conn.rollback()
    diag = failure.value.diag
    return {
        "C": failure.value.pgcode,
        "M": diag.message_primary,
        "D": diag.message_detail,
        "H": diag.message_hint,
    }


def refused_rs(conn, sql: str, params=None) -> dict:
    """The same through redshift_connector (extended protocol), as the provider's hook runs SQL."""
    import redshift_connector

    with pytest.raises(redshift_connector.Error) as failure:
        run(conn, sql, params)
    conn.rollback()
    return failure.value.args[0]


@pytest.fixture
def tables(pg_conn, schema):
    run(pg_conn, f"create table {schema}.t (id int, a varchar(10))")
    run(pg_conn, f"insert into {schema}.t values (1, 'x'), (2, 'y')")
    pg_conn.commit()
    return schema


# docs: c_unsupported-postgresql-features — "VALUES list used as constant tables"
def test_a_values_list_as_a_table_is_a_syntax_error(pg_conn, tables):
    error = refused(pg_conn, f"select * from {tables}.t join (values (1)) as v(id) using (id)")
    assert (error["C"], error["M"]) == ("42601", 'syntax error at or near "values"')
    assert "c_unsupported-postgresql-features" in error["H"]
    # INSERT ... VALUES with several rows is Redshift's own (docs: r_INSERT_30)
    run(pg_conn, f"insert into {tables}.t (id, a) values (3, 'z'), (4, 'w')")
    assert run(pg_conn, f"select count(*) from {tables}.t") == [(4,)]


# docs: r_INSERT_30 — no ON CONFLICT and no RETURNING in Redshift's INSERT (nor UPDATE, DELETE)
@pytest.mark.parametrize(
    "statement, near",
    [
        ("insert into {s}.t (id, a) values (1, 'x') on conflict do nothing", "on"),
        ("insert into {s}.t (id, a) values (9, 'x') returning id", "returning"),
        ("delete from {s}.t where id = 1 returning id", "returning"),
    ],
)
def test_on_conflict_and_returning_are_syntax_errors(pg_conn, tables, statement, near):
    error = refused(pg_conn, statement.format(s=tables))
    assert (error["C"], error["M"]) == ("42601", f'syntax error at or near "{near}"')
    assert run(pg_conn, f"select count(*) from {tables}.t") == [(2,)], "nothing ran"


# docs: c_unsupported-postgresql-features — "Indexes", "Sequences";
# c_unsupported-postgresql-datatypes — SERIAL
@pytest.mark.parametrize(
    "statement, message",
    [
        ("create index t_id on {s}.t (id)", "CREATE INDEX is not supported"),
        ("create sequence {s}.ids", "Sequences are not supported"),
        ("create table {s}.u (id serial)", 'Column "id" has unsupported type "serial"'),
    ],
)
def test_indexes_and_sequences_are_not_supported(pg_conn, tables, statement, message):
    error = refused(pg_conn, statement.format(s=tables))
    assert (error["C"], error["M"]) == ("0A000", message)
    created = run(
        pg_conn,
        "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relname in ('t_id', 'ids', 'u')",
        (tables,),
    )
    assert created == [(0,)], "PostgreSQL never ran it"


# docs: c_sql-functions-leader-node, c_SQL_functions_leader_node_only,
# c_unsupported-postgresql-functions — arrays and leader-node-only functions over user tables
@pytest.mark.parametrize(
    "statement, info",
    [
        ("select * from {s}.t where id = any(array[1, 2])", 'Operator "= ANY (array)" not supported.'),
        ("select (array[id, 2])[1] from {s}.t", 'Type "array" not supported.'),
        (
            "select id from {s}.t join generate_series(1, 3) as g on g = id",
            'Function "generate_series()" not supported.',
        ),
        ("select string_agg(a, ',') from {s}.t", 'Function "string_agg()" not supported.'),
        (
            "insert into {s}.t (id) select g from generate_series(5, 6) as g",
            'Function "generate_series()" not supported.',
        ),
    ],
)
def test_leader_node_only_constructs_over_user_tables_are_refused(rs_conn, tables, statement, info):
    import redshift_connector

    cur = rs_conn.cursor()
    rs_conn.notices.clear()
    with pytest.raises(redshift_connector.Error) as failure:
        cur.execute(statement.format(s=tables))
    rs_conn.rollback()
    error = failure.value.args[0]
    assert (error["C"], error["M"]) == ("0A000", LEADER_NODE)
    assert f"{tables}.t" in error["D"]
    # Redshift names each construct in an INFO message before the error
    assert info in [notice[b"M"].decode() for notice in rs_conn.notices], list(rs_conn.notices)
    assert all(b"W" not in notice for notice in rs_conn.notices), "no PL/pgSQL context"
    assert run(rs_conn, f"select count(*) from {tables}.t") == [(2,)], "nothing was inserted"


def test_leader_node_only_constructs_work_without_user_tables(rs_conn, pg_conn, tables):
    """The same run on the leader node when a query reads the catalog or no table
    (docs: c_sql-functions-leader-node): the driver's and psql's catalog queries need it."""
    assert run(pg_conn, "select array[1, 2] = array[1, 2], 1 = any(array[1])") == [(True, True)]
    assert run(rs_conn, "select count(*) from generate_series(1, 3)") == [(3,)]
    rows = run(pg_conn, "select array_to_string(relacl, '|') from pg_class where relname = 'pg_class'")
    assert len(rows) == 1
    # the extended protocol's bound parameters stay bound (refusals keep $n referenced)
    error = refused_rs(rs_conn, f"select * from {tables}.t where id = any(array[%s])", (1,))
    assert error["M"] == LEADER_NODE


# docs: c_unsupported-postgresql-functions — "Array functions and operators"
def test_unnest_does_not_exist(pg_conn):
    error = refused(pg_conn, "select unnest(array[1, 2])")
    assert (error["C"], error["M"]) == ("42883", "function unnest does not exist")


# docs: r_MERGE — one WHEN MATCHED (UPDATE or DELETE) and one WHEN NOT MATCHED INSERT,
# without conditions
@pytest.mark.parametrize(
    "clauses, near",
    [
        ("when matched and s.a = 'x' then delete when matched then update set a = s.a", "and"),
        ("when matched then delete when matched then update set a = s.a", "when"),
        ("when not matched then do nothing", "do"),
    ],
)
def test_merge_beyond_redshifts_grammar_is_a_syntax_error(pg_conn, tables, clauses, near):
    run(pg_conn, f"create table {tables}.s (id int, a varchar(10))")
    run(pg_conn, f"insert into {tables}.s values (1, 'new')")
    pg_conn.commit()
    error = refused(pg_conn, f"merge into {tables}.t using {tables}.s s on t.id = s.id {clauses}")
    assert (error["C"], error["M"]) == ("42601", f'syntax error at or near "{near}"')
    assert "r_MERGE" in error["H"]
    assert run(pg_conn, f"select a from {tables}.t where id = 1") == [("x",)]


# docs: r_MERGE (usage notes) — a source with several rows for one target row fails
def test_merge_with_several_source_rows_per_target_row_fails_as_on_redshift(rs_conn, tables):
    run(rs_conn, f"create table {tables}.s (id int, a varchar(10))")
    run(rs_conn, f"insert into {tables}.s values (1, 'one'), (1, 'two')")
    rs_conn.commit()
    error = refused_rs(
        rs_conn,
        f"merge into {tables}.t using {tables}.s s on t.id = s.id "
        "when matched then update set a = s.a when not matched then insert (id, a) values (s.id, s.a)",
    )
    assert (error["C"], error["M"]) == ("XX000", "Found multiple matches to update the same tuple.")
    assert run(rs_conn, f"select a from {tables}.t where id = 1") == [("x",)]


# docs: c_redshift-sql — "The maximum size for a single Amazon Redshift SQL statement is 16 MB"
def test_a_statement_over_16_mb_is_refused(pg_conn, tables):
    big = "x" * (16 * 1024 * 1024)
    error = refused(pg_conn, f"select count(*) from {tables}.t where a = '{big}'")
    assert error["C"] == "54000"
    assert error["M"].startswith("Statement is too large. Statement Size: 167772")
    assert error["M"].endswith("Maximum Allowed: 16777216 bytes")


# docs: r_TRUNCATE — "The TRUNCATE command commits the transaction in which it is run"
def test_truncate_commits_the_open_transaction_psycopg2(pg_conn, tables):
    run(pg_conn, f"create table {tables}.other (id int)")
    pg_conn.commit()
    run(pg_conn, f"insert into {tables}.other values (1)")  # psycopg2 opened a block
    run(pg_conn, f"truncate {tables}.t")
    pg_conn.rollback()  # rolls back nothing: the TRUNCATE committed the block
    assert run(pg_conn, f"select count(*) from {tables}.other") == [(1,)]
    assert run(pg_conn, f"select count(*) from {tables}.t") == [(0,)]


def test_truncate_commits_the_open_transaction_redshift_connector(rs_conn, tables):
    run(rs_conn, f"create table {tables}.other (id int)")
    rs_conn.commit()
    for value in (1, 2):  # the second TRUNCATE is the driver's cached statement, run again
        run(rs_conn, f"insert into {tables}.other values ({value})")
        run(rs_conn, f"truncate table {tables}.t")
        rs_conn.rollback()
    assert run(rs_conn, f"select id from {tables}.other order by id") == [(1,), (2,)]
    rs_conn.rollback()
