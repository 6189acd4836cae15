"""The grammar gate's recording, as a pytest plugin (loaded by tests/conftest.py).

- $DEVSTACK_REDSHIFT_STATEMENT_LOG names the file the Redshift stand-in appends every
  statement it receives to (devstack/redshift/statement_log.py); set here before the stack
  starts, to a file of the session's own unless already set.
- Before each test, a marker line {"test": <node id>, "gated": ...} goes into the same file:
  a statement belongs to the test whose marker precedes it. Gated are all tests but those of
  the stand-in's own suite (tests/devstack/redshift/, which sends PostgreSQL-only SQL on
  purpose to see it refused) and those marked @pytest.mark.unportable_sql.
- When the session's `stack` is up, the source PostgreSQL logs every statement of its
  `tracking` database (log_statement = all) into its server log, with a prefix the gate
  reads (tests/sql_grammar.py: SOURCE_LOG_PREFIX).
- Tests marked @pytest.mark.statement_gate (tests/e2e/test_statement_grammar.py) run after
  every other test, over what the session recorded. A session that recorded pipeline
  statements but did not select the gate's tests (pytest tests/faults) runs the gate at
  its end and fails when a statement does not parse.

A new test that runs the pipeline needs nothing: whatever it sends during its run, fixtures
included, is recorded and gated.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.sql_grammar import (
    SOURCE_LOG_PREFIX,
    STATEMENT_LOG_ENV,
    Recorded,
    RunSpan,
    distinct_shapes,
    read_source_log,
    read_statement_log,
    unparsable,
)

UNGATED_PATHS = ("tests/devstack/redshift/",)
SOURCE_DATABASE = "tracking"  # devstack.stack.SOURCE_DATABASE


@dataclass
class RecordedStatements:
    """What the session sent to each engine so far (read from the logs when asked)."""

    statement_log: Path
    source_log: Path | None = None
    owned: bool = False  # the statement log is a temporary file of this session
    offset: int = 0  # where this session's lines start in a log named by $DEVSTACK_REDSHIFT_STATEMENT_LOG
    gate_ran: bool = False
    spans: list[RunSpan] = field(default_factory=list)

    def redshift(self) -> list[Recorded]:
        recorded, self.spans = read_statement_log(self.statement_log, self.offset)
        return recorded

    def postgres(self) -> list[Recorded]:
        if self.source_log is None:
            return []
        if not self.spans:
            self.redshift()
        return read_source_log(self.source_log, SOURCE_DATABASE, self.spans)

    def mark(self, test: str, gated: bool) -> None:
        line = json.dumps({"at": round(time.time(), 3), "test": test, "gated": gated}) + "\n"
        fd = os.open(self.statement_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


_KEY = pytest.StashKey[RecordedStatements]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "statement_gate: parses what the session sent to the engines; runs after every other test"
    )
    config.addinivalue_line(
        "markers", "unportable_sql: sends SQL Redshift refuses on purpose; kept out of the grammar gate"
    )
    path = os.environ.get(STATEMENT_LOG_ENV)
    owned = not path
    if owned:
        fd, path = tempfile.mkstemp(prefix="redshift-statements-", suffix=".jsonl")
        os.close(fd)
        os.environ[STATEMENT_LOG_ENV] = path
    offset = 0 if owned or not Path(path).exists() else Path(path).stat().st_size
    config.stash[_KEY] = RecordedStatements(Path(path), owned=owned, offset=offset)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    gate = [item for item in items if item.get_closest_marker("statement_gate")]
    if gate:
        items[:] = [item for item in items if item not in gate] + gate


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    gated = not item.nodeid.startswith(UNGATED_PATHS) and not (
        item.get_closest_marker("unportable_sql") or item.get_closest_marker("statement_gate")
    )
    item.config.stash[_KEY].mark(item.nodeid, gated)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    result = yield
    if fixturedef.argname == "stack":
        _log_source_statements(result, request.config.stash[_KEY])
    return result


def _log_source_statements(stack, recorded: RecordedStatements) -> None:
    """Make the source PostgreSQL log every statement of its `tracking` database."""
    base_dir = getattr(stack.postgres, "base_dir", None)
    if base_dir is None:
        return
    import psycopg2

    conn = psycopg2.connect(stack.postgres.dsn())
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("alter system set log_line_prefix = %s", (SOURCE_LOG_PREFIX,))
            cursor.execute(f"alter database {SOURCE_DATABASE} set log_statement = 'all'")
            cursor.execute("select pg_reload_conf()")
    finally:
        conn.close()
    recorded.source_log = Path(base_dir) / "server.log"


@pytest.fixture(scope="session")
def recorded_statements(request) -> RecordedStatements:
    """The session's statement logs: .redshift() and .postgres() give what was recorded so far."""
    recorded = request.config.stash[_KEY]
    recorded.gate_ran = True
    return recorded


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    recorded = session.config.stash.get(_KEY, None)
    if recorded is None:
        return
    try:
        if not recorded.gate_ran and exitstatus == 0:
            failures = gate_failures(recorded)
            if failures:
                reporter = session.config.pluginmanager.get_plugin("terminalreporter")
                if reporter is not None:
                    reporter.write_line("\ngrammar gate (tests/e2e/test_statement_grammar.py):\n" + failures)
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
    finally:
        if recorded.owned:
            recorded.statement_log.unlink(missing_ok=True)


def gate_failures(recorded: RecordedStatements) -> str:
    """The statements that do not parse, described; '' when all do."""
    lines = []
    for engine, statements in (("redshift", recorded.redshift()), ("postgres", recorded.postgres())):
        if statements:
            lines += [failure.describe() for failure in unparsable(distinct_shapes(statements), engine)]
    return "\n".join(lines)
