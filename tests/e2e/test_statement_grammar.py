"""The grammar gate: every statement the session's tests sent to the Redshift side parses as
Redshift SQL (sqlfluff's `redshift` dialect), and every statement sent to the source as
PostgreSQL SQL; a planted construct Redshift refuses fails the run.

The two gate tests run after every other test (tests/statement_gate.py orders them last)
over what the Redshift stand-in and the source PostgreSQL logged while the pipeline's tests
ran: the rendered templates with real values, the provider's COPY (its keys masked in the
log), the publish, the validation. Each distinct shape (literals normalized) is parsed once.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from tests.dag_helpers import run_dag
from tests.sql_grammar import Recorded, distinct_shapes, normalize, read_statement_log, unparsable


def _gate(statements: list[Recorded], dialect: str, capsys) -> None:
    started = time.perf_counter()
    shapes = distinct_shapes(statements)
    failures = unparsable(shapes, dialect)
    with capsys.disabled():
        print(
            f"\ngrammar gate ({dialect}): {len(statements)} statements recorded, {len(shapes)} distinct "
            f"shapes parsed in {time.perf_counter() - started:.1f} s"
        )
    assert not failures, (
        f"{len(failures)} statement(s) sent to {dialect} do not parse as {dialect} SQL (sqlfluff):\n"
        + "\n".join(failure.describe() for failure in failures)
    )


@pytest.mark.statement_gate
def test_every_statement_sent_to_redshift_parses_as_redshift_sql(recorded_statements, capsys):
    statements = recorded_statements.redshift()
    if not statements:
        pytest.skip("no test that talks to the Redshift stand-in ran in this session")
    _gate(statements, "redshift", capsys)


@pytest.mark.statement_gate
def test_every_statement_sent_to_the_source_parses_as_postgres_sql(recorded_statements, capsys):
    statements = recorded_statements.postgres()
    if not statements:
        pytest.skip("no test that talks to the source ran in this session")
    _gate(statements, "postgres", capsys)


# ----------------------------------------------------------------------------- the gate itself


def test_the_gate_names_an_unparsable_statement_and_where_it_came_from(tmp_path):
    log = tmp_path / "statements.jsonl"
    lines = [
        {"at": 1.0, "test": "tests/e2e/test_x.py::test_run", "gated": True},
        {"at": 1.1, "sql": "select id from tracking.action where id in (1, 2, 3)", "application": "a"},
        {"at": 1.2, "sql": "select id from tracking.action where id in (4, 5)", "application": "a"},
        {
            "at": 1.3,
            "sql": "insert into tracking.action_type (id) values (1) on conflict do nothing",
            "application": "redshift_connector",
            "user": "stack",
            "protocol": "extended",
        },
        {"at": 1.4, "sql": "select 'x'::regclass::oid"},  # a psycopg2 helper: no application name
        {"at": 2.0, "test": "tests/devstack/redshift/test_y.py::test_refused", "gated": False},
        {"at": 2.1, "sql": "select * from (values (1)) v on conflict", "application": "b"},
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    statements, spans = read_statement_log(log)
    assert [span.gated for span in spans] == [True, False]
    shapes = distinct_shapes(statements)
    assert len(shapes) == 2, (
        "one shape for both IN lists, one for the INSERT; helpers and ungated tests left out"
    )
    (failure,) = unparsable(shapes, "redshift")
    text = failure.describe()
    assert "on conflict do nothing" in text
    assert "during tests/e2e/test_x.py::test_run (application 'redshift_connector', user stack" in text


def test_normalizing_keeps_the_grammar_and_drops_the_values():
    assert normalize(
        "select * from test_1a2b3c4d.action_staging_20250301 where id in (1, 2, 3) and q = 'it''s' -- x"
    ) == ("select * from test_h.action_staging_h where id in (0) and q = 's'")
    assert normalize("select md5(x)::int8 from e2e_f4372cbb.t") == "select md5(x)::int8 from e2e_h.t"
    assert normalize("insert into s.t (a, b) values ($1, $2), ($3, $4), ($5, $6)") == (
        "insert into s.t (a, b) values ($1)"
    )


@pytest.mark.integration
@pytest.mark.unportable_sql
def test_a_construct_redshift_refuses_fails_the_run(pipeline_dag, target, monkeypatch):
    """A statement on its way to the target carrying PostgreSQL-only SQL (an index) fails the
    task that sends it, with Redshift's error, and the run with it: the stand-in does not run it."""
    import tracking_sync.load.schema as schema

    planted = []

    def with_an_index(target_schema: str) -> list[str]:
        statements = [
            *original(target_schema),
            f"create index action_user_idx on {target_schema}.action (user_profile_id)",
        ]
        planted.append(statements[-1])
        return statements

    original = schema.target_tables_statements
    monkeypatch.setattr(schema, "target_tables_statements", with_an_index)
    run = run_dag(pipeline_dag, logical_date=datetime(2025, 3, 3, tzinfo=UTC), expect="failed")
    assert planted, "the planted statement was sent"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["create_schema"] == "failed", states
    with target.cursor() as cursor:
        cursor.execute("select count(*) from pg_indexes where indexname = 'action_user_idx'")
        assert cursor.fetchone() == (0,), "PostgreSQL never ran the CREATE INDEX"
