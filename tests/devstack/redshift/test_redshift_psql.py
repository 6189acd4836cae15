"""psql against the stand-in: its describe commands run, as they do against Redshift.

psql chooses its catalog queries by the server version; for Redshift's 8.0.2 they
read catalog columns PostgreSQL has since dropped (pg_class.relhasoids,
pg_proc.proisagg), which the stand-in answers from today's catalog.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("psql") is None, reason="the psql client is not installed"),
]


def psql(redshift, *commands: str) -> str:
    args = ["psql", redshift.dsn(), "-X", "-v", "ON_ERROR_STOP=1"]
    for command in commands:
        args += ["-c", command]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr
    return done.stdout


@pytest.fixture
def action_table(redshift, schema):
    psql(
        redshift,
        f"create table {schema}.action (id bigint not null, name varchar(20) default 'x', at timestamp)"
        " diststyle key distkey(id) sortkey(at)",
    )
    return f"{schema}.action"


# docs: r_PG_TABLE_DEF, c_redshift-and-postgres-sql — a table described from the catalog
def test_psql_describes_a_table(redshift, schema, action_table):
    out = psql(redshift, rf"\d {action_table}", rf"\d+ {action_table}")
    assert f'Table "{action_table}"' in out
    for column, type_ in (("id", "bigint"), ("name", "character varying(20)"), ("at", "timestamp")):
        assert any(
            line.split("|")[0].strip() == column and type_ in line for line in out.splitlines() if "|" in line
        ), (column, out)


def test_psql_lists_tables_schemas_and_functions(redshift, schema, action_table):
    tables = psql(redshift, rf"\dt {schema}.*")
    assert f" {schema} | action | table " in tables
    schemas = psql(redshift, r"\dn")
    assert any(line.split("|")[0].strip() == schema for line in schemas.splitlines() if "|" in line)
    functions = psql(redshift, r"\df datediff")
    assert "datediff" in functions and "bigint" in functions
