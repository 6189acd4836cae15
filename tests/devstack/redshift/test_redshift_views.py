"""Views as Redshift binds them (docs: r_CREATE_VIEW): a late-binding view (WITH NO SCHEMA
BINDING) resolves its tables by name when queried, so it reads whichever table has the name
after a RENAME swap, keeping its own grants; a regular view stays bound to its table, which
then cannot be dropped. Through redshift_connector, inside one transaction, as a publish
swaps a table in."""

from __future__ import annotations

import pytest

from devstack.grants import REDSHIFT_USER

pytestmark = pytest.mark.integration


def rows(conn, sql: str) -> list[tuple]:
    cur = conn.cursor()
    cur.execute(sql)
    result = [tuple(row) for row in cur.fetchall()]
    conn.commit()
    return result


def run(conn, *statements: str) -> None:
    cur = conn.cursor()
    for statement in statements:
        cur.execute(statement)
    conn.commit()


@pytest.fixture
def two_tables(rs_conn, schema):
    run(
        rs_conn,
        f"create table {schema}.t (id int, v varchar(10))",
        f"insert into {schema}.t values (1, 'old')",
        f"create table {schema}.t_new (id int, v varchar(10))",
        f"insert into {schema}.t_new values (2, 'new')",
    )
    return schema


def swap(conn, schema: str) -> None:
    run(
        conn,
        f"alter table {schema}.t rename to t_old",
        f"alter table {schema}.t_new rename to t",
        f"drop table {schema}.t_old",
    )


def test_a_late_binding_view_reads_the_table_swapped_in_under_its_name(rs_conn, two_tables):
    schema = two_tables
    run(
        rs_conn,
        f"create view {schema}.lbv as select id, v from {schema}.t with no schema binding",
        f"grant select on {schema}.lbv to public",
    )
    assert rows(rs_conn, f"select * from {schema}.lbv") == [(1, "old")]
    swap(rs_conn, schema)
    assert rows(rs_conn, f"select * from {schema}.lbv") == [(2, "new")]
    (acl,) = rows(rs_conn, "select array_to_string(relacl, '|') from pg_class where relname = 'lbv'")[0]
    assert "=r/" in acl, "the view kept its grant"


def test_a_swap_rolled_back_leaves_the_late_binding_view_on_the_old_table(rs_conn, two_tables):
    schema = two_tables
    run(rs_conn, f"create view {schema}.lbv as select id, v from {schema}.t with no schema binding")
    cur = rs_conn.cursor()
    cur.execute(f"alter table {schema}.t rename to t_old")
    cur.execute(f"alter table {schema}.t_new rename to t")
    rs_conn.rollback()
    assert rows(rs_conn, f"select * from {schema}.lbv") == [(1, "old")]


def test_a_regular_view_stays_bound_and_keeps_its_table_from_being_dropped(rs_conn, two_tables):
    import redshift_connector

    schema = two_tables
    run(rs_conn, f"create view {schema}.bound as select id, v from {schema}.t")
    with pytest.raises(redshift_connector.ProgrammingError, match="other objects depend on it"):
        swap(rs_conn, schema)
    rs_conn.rollback()
    assert rows(rs_conn, f"select * from {schema}.bound") == [(1, "old")]


# docs: r_SVV_RELATION_PRIVILEGES — one row per identity and privilege; no Redshift roles here
def test_svv_relation_privileges_lists_the_grants_by_identity(rs_conn, two_tables):
    schema = two_tables
    run(rs_conn, f"grant select, insert on {schema}.t to public")
    assert rows(
        rs_conn,
        "select privilege_type, identity_name, identity_type from svv_relation_privileges "
        f"where namespace_name = '{schema}' and relation_name = 't' and identity_name <> '{REDSHIFT_USER}' "
        "order by privilege_type",
    ) == [("INSERT", "public", "public"), ("SELECT", "public", "public")]
