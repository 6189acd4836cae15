"""include/sql linted with sqlfluff (settings and rules: include/sql/.sqlfluff).

Each file is rendered as the pipeline renders it (Jinja from include/sql, StrictUndefined,
the values below standing in for tracking_sync.core.tables and a run plan), the drivers'
placeholders bound, and the SQL linted in the dialect of the engine that runs it:
redshift/ on Redshift, postgres/ on PostgreSQL, parity/ and drilldown/ on both. Files
whose name starts with _ hold macros only; every variant a template branches on (full
refresh or not, scoped or full, each engine) is rendered. The e2e grammar gate
(tests/e2e/test_statement_grammar.py) parses what the pipeline really sent.

A new template variable needs a sample value in SAMPLES: the test says which.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest

SQL_DIR = Path(__file__).resolve().parent.parent / "include" / "sql"
DIALECTS = {"redshift": ("redshift",), "postgres": ("postgres",), "parity": ("redshift", "postgres")}
DIALECTS["drilldown"] = DIALECTS["parity"]
# %(name)s and %s, as redshift_connector sends them ($n) and psycopg2 would inline a value
_PLACEHOLDER = re.compile(r"%\(\w+\)s|%s")


def _column(name: str, redshift_type: str, nullable: bool = False, select: str | None = None):
    return SimpleNamespace(
        name=name, redshift_type=redshift_type, nullable=nullable, select_expression=select or name
    )


_ACTION_COLUMNS = [
    _column("id", "integer"),
    _column("user_profile_id", "integer"),
    _column("session_id", "varchar(400)"),
    _column("action_time", "timestamptz", select="action_time at time zone 'UTC' as action_time"),
    _column("course_id", "integer", nullable=True),
    _column("query", "varchar(65535)", nullable=True),
]
_FILE_COLUMNS = [
    *_ACTION_COLUMNS,
    _column(
        "query_is_marker", "boolean", select="coalesce(query = chr(92) || 'N', false) as query_is_marker"
    ),
]
_ACTION = SimpleNamespace(
    name="action",
    columns=_ACTION_COLUMNS,
    file_columns=_FILE_COLUMNS,
    table_attributes="distkey (user_profile_id) sortkey (action_time)",
)
_ACTION_TYPE = SimpleNamespace(
    name="action_type",
    columns=[_column("id", "integer"), _column("code", "varchar(400)")],
    file_columns=[],
    table_attributes="diststyle all",
)
_STAMP = "timestamp '2025-03-01 00:00:00.000000'"

# Sample values by variable name; a list gives the variants a template branches on.
SAMPLES: dict[str, object] = {
    "schema": "tracking",
    "relation": ["tracking.action", "validate_rows_by_id"],
    "staging": "action_staging_20250301t000000_20250302t000000",
    "replaced": "action_replaced_by_full_refresh",
    "table": [_ACTION],
    "tables": [[_ACTION_TYPE, _ACTION]],
    "columns": [[c.name for c in _FILE_COLUMNS]],
    "expressions": [["id", "case when query_is_marker then chr(92) || 'N' else query end"]],
    "rows": 2,
    "ids": [[1, 2, 3]],
    "full_refresh": [False, True],
    "flagged": [[("query", "query_is_marker")]],
    "marker": "chr(92) || 'N'",
    "grants": [[SimpleNamespace(grantee='"reader"', privileges=("select",), grant_option=True)]],
    "time_column": ["action_time", None],
    "id_column": "id",
    "id_from": [True, False],
    "id_to": True,
    "window_start": _STAMP,
    "window_end": "timestamp '2025-03-02 00:00:00.000000'",
    "scope": ["scoped", "full"],
    "base": "parity_action_user_totals",
    "users": [[7, 8], []],
    "days": [[(_STAMP, "timestamp '2025-03-02 00:00:00.000000'")], []],
    "ranges": [[(0, 1024), (4096, 5120)], []],
    "bucket_size": 1024,
    "toasted": [[("query", "query_is_marker", "query_unchanged")]],
    "change_columns": [[_column("change_seq", "bigint"), _column("change_kind", "char(1)"), *_FILE_COLUMNS]],
    "toastable": [["query"]],
    "all": [False, True],
    "by_ids": [True, False],
    "xip": [2, 0],
    "reloads": [True, False],
    "reads_target": [True, False],
    "publication": "tracking_sync_action",
    "role": "tracking_reader",
    "user": "tracking_loader",
    "database": "tracking",
    "table_names": [["action_type", "action", "sync_state"]],
    "scope_users": "7, 8",
    "dialect": "<engine>",  # the engine the text is rendered for
}
# postgres/ renders a table by name (export_table, select_id_statistics), redshift/ by definition
SAMPLES_BY_FOLDER: dict[str, dict[str, object]] = {"postgres": {"table": "action"}}


def _environment(path: Path) -> jinja2.Environment:
    """Imports resolve from include/sql (sql_templates) and from the file's folder (drilldown)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([SQL_DIR, path.parent]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


def _variables(path: Path) -> set[str]:
    from jinja2 import meta

    env = _environment(path)
    names = meta.find_undeclared_variables(env.parse(path.read_text()))
    for imported in re.findall(r"""(?:import|from)\s+["']([^"']+)["']""", path.read_text()):
        source, _, _ = env.loader.get_source(env, imported)
        names |= meta.find_undeclared_variables(env.parse(source))
    return names


def _renderings(path: Path, engine: str) -> list[tuple[str, str]]:
    """(label, SQL) for each variant of the sample values the file uses: variant k takes the
    k-th choice of every variable that has choices (each branch rendered once, not every
    combination: sqlfluff lints a statement in ~0.1-0.3 s)."""
    samples = {**SAMPLES, **SAMPLES_BY_FOLDER.get(path.relative_to(SQL_DIR).parts[0], {})}
    names = sorted(_variables(path))
    missing = [name for name in names if name not in samples]
    assert not missing, (
        f"{path.relative_to(SQL_DIR)} uses {missing}: add sample values to SAMPLES in {__file__}"
    )
    choices = {name: samples[name] if isinstance(samples[name], list) else [samples[name]] for name in names}
    template = _environment(path).get_template(str(path.relative_to(SQL_DIR)))
    out = []
    for k in range(max((len(c) for c in choices.values()), default=1)):
        context = {name: c[min(k, len(c) - 1)] for name, c in choices.items()}
        context = {name: engine if value == "<engine>" else value for name, value in context.items()}
        sql = _PLACEHOLDER.sub("$1", template.render(**context))
        label = ", ".join(f"{name}={context[name]!r}" for name, c in choices.items() if len(c) > 1)
        out.append((label, sql))
    return out


def _files() -> list[tuple[Path, str]]:
    return [
        (path, engine)
        for folder, engines in DIALECTS.items()
        for path in sorted((SQL_DIR / folder).rglob("*.sql"))
        if not path.name.startswith("_")
        for engine in engines
    ]


def test_every_folder_of_include_sql_has_a_dialect():
    folders = {p.name for p in SQL_DIR.iterdir() if p.is_dir()}
    assert folders <= set(DIALECTS), f"folders without a dialect in {__file__}: {folders - set(DIALECTS)}"


@pytest.fixture(scope="module")
def linters():
    from sqlfluff.core import FluffConfig, Linter

    return {
        engine: Linter(config=FluffConfig.from_path(str(SQL_DIR), overrides={"dialect": engine}))
        for engine in ("redshift", "postgres")
    }


@pytest.mark.parametrize(
    "path, engine",
    _files(),
    ids=[f"{path.relative_to(SQL_DIR)}-{engine}" for path, engine in _files()],
)
def test_sql_file_parses_and_passes_the_correctness_rules(path, engine, linters):
    problems = []
    for label, sql in _renderings(path, engine):
        result = linters[engine].lint_string(sql, fname=str(path))
        for violation in result.get_violations():
            line = sql.splitlines()[violation.line_no - 1].strip() if violation.line_no else ""
            problems.append(
                f"{violation.rule_code()} line {violation.line_no} of the rendered SQL ({label or 'as is'}): "
                f"{violation.desc()}\n    {line}"
            )
    assert not problems, f"{path.relative_to(SQL_DIR)} as {engine} SQL:\n" + "\n".join(problems)


def test_the_lint_catches_what_it_is_for(linters):
    """A planted error of each kind is reported (the rules are not silently off)."""
    planted = {
        "PRS": "insert into t (a) values (1) on conflict do nothing",
        "AM02": "select a from x union select a from y",
        "AM07": "select a, b from x union all select a from y",
        "ST03": "with unused as (select 1 as a) select a from x",
    }
    for code, sql in planted.items():
        codes = {v.rule_code() for v in linters["redshift"].lint_string(sql).get_violations()}
        assert code in codes, f"{code} not reported for: {sql} ({codes})"
    codes = {v.rule_code() for v in linters["postgres"].lint_string("select q.a from x").get_violations()}
    assert "RF01" in codes
