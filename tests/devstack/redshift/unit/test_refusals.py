"""What the stand-in refuses and what it lets through, below the socket (docs pages: see
devstack/redshift/refusals.py); and the statement log's masking of secrets."""

from __future__ import annotations

import json

import pytest

from devstack.redshift.refusals import check_statement, compute_node_relations, refusal_sql
from devstack.redshift.statement_log import StatementLog, mask_secrets
from devstack.redshift.tokens import significant, tokenize


@pytest.mark.parametrize(
    "sql",
    [
        # the pipeline's own shapes (include/sql/redshift, the provider's COPY, validation)
        "insert into tracking.action_staging (id, query) values ($1, $2), ($3, $4)",
        "delete from tracking.action using tracking.s as staged where action.id = staged.id",
        "select pg_get_userbyid(c.relowner), array_to_string(c.relacl, '|') from pg_class as c "
        "join pg_namespace as n on n.oid = c.relnamespace where c.relname = $1",
        "lock tracking.action",
        "declare parity_rows cursor for select day, count(*) from parity_base group by day",
        "select sum(strtol(substr(md5(cast(id as varchar)), 1, 8), 16)) from tracking.action",
        "merge into t using s on t.id = s.id when matched then update set a = s.a "
        "when not matched then insert (id, a) values (s.id, s.a)",
        "select extract(epoch from max(last_time)) from parity_base",
        "select * from t where id = any (select id from u)",
        # the leader node: catalog or no table
        "select array[1, 2], generate_series(1, 3), now()",
        "select string_agg(attname, ',') from pg_attribute where attrelid = 1",
        "create table t (serial int, a int)",
        "create view v as select uuid, json from t",
    ],
)
def test_redshift_sql_passes(sql):
    assert check_statement(sql) is None


@pytest.mark.parametrize(
    "sql, sqlstate, words",
    [
        ("select * from (values (1)) as v(x)", "42601", '"values"'),
        ("insert into t select * from (values (1)) v", "42601", '"values"'),
        ("insert into t values (1) on conflict do nothing", "42601", '"on"'),
        ("update t set a = 1 returning a", "42601", '"returning"'),
        ("create unique index i on t (a)", "0A000", "CREATE INDEX"),
        ("select nextval('s') from t", "0A000", "Sequences"),
        ("create table t (id bigserial)", "0A000", '"bigserial"'),
        ("alter table t add column payload jsonb", "0A000", '"jsonb"'),
        ("select unnest(array[1])", "42883", "unnest"),
        ("select x[1] from t", "0A000", "not supported on Redshift tables"),
        ("select * from t where id = any($1)", "0A000", "not supported on Redshift tables"),
        ("select now() from t", "0A000", "not supported on Redshift tables"),
        ("merge into t using s on t.id = s.id when matched and s.x then delete", "42601", '"and"'),
    ],
)
def test_postgresql_only_sql_is_refused(sql, sqlstate, words):
    refusal = check_statement(sql)
    assert refusal is not None and refusal.sqlstate == sqlstate and words in refusal.message
    assert "docs.aws.amazon.com/redshift/latest/dg/" in refusal.full_hint


def test_relations_on_the_compute_nodes():
    def tables(sql):
        return compute_node_relations(significant(tokenize(sql)))

    assert tables("with a as (select 1 from s.t) select * from a join u on true") == ["s.t", "u"]
    assert tables("select 1 from x, y as b where b.id in (select id from z)") == ["x", "y", "z"]
    assert tables("select extract(epoch from x) from pg_class, information_schema.tables") == []
    assert tables("insert into s.t (a) select trim(both from b) from #tmp") == ["s.t", "#tmp"]


def test_the_refusal_keeps_the_clients_parameters():
    refusal = check_statement("select * from t where id = any($1) and a = $2")
    sql = refusal_sql(refusal, "select * from t where id = any($1) and a = $2")
    assert sql.startswith("select pg_catalog.rs_refuse('0A000', ")
    assert sql.endswith(", $1::text, $2::text")


@pytest.mark.parametrize(
    "sql",
    [
        "copy s.t from 's3://b/k' credentials 'aws_access_key_id=AKIA1;aws_secret_access_key=SECRET' csv",
        "copy s.t from 's3://b/k' access_key_id 'AKIA1' secret_access_key 'SECRET' session_token 'TOKEN'",
        "COPY s.t FROM 's3://b/k' CREDENTIALS AS 'aws_access_key_id=AKIA1;aws_secret_access_key=SECRET'",
        "create user u password 'SECRET'",
    ],
)
def test_the_statement_log_never_holds_a_secret(sql, tmp_path):
    log = StatementLog(str(tmp_path / "statements.jsonl"))
    log.record(sql, user="u", application="redshift_connector", protocol="simple", session=1)
    log.close()
    entry = json.loads((tmp_path / "statements.jsonl").read_text())
    for secret in ("AKIA1", "SECRET", "TOKEN"):
        assert secret not in entry["sql"]
    assert "'***'" in entry["sql"] and entry["sql"].startswith(sql[:20])
    assert mask_secrets("select 'SECRET' as password_hint") == "select 'SECRET' as password_hint"
