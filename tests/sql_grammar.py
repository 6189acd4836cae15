"""Parse SQL the way the grammar gate does: sqlfluff's `redshift` and `postgres` dialects,
over statements with their literals normalized so that each shape is parsed once.

    shapes = distinct_shapes(statements)          # {normalized text: [Recorded, ...]}
    errors = unparsable(shapes, "redshift")        # [(shape, error text, first Recorded)]

sqlfluff parses a statement in 5-50 ms once its dialect is loaded (~1 s): the gate parses
each distinct shape once, not each of the thousands of statements a run sends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from devstack.redshift.tokens import (
    COMMENT,
    NUMBER,
    PARAM,
    QIDENT,
    STRING,
    WORD,
    WS,
    split_statements,
    tokenize,
)

STATEMENT_LOG_ENV = "DEVSTACK_REDSHIFT_STATEMENT_LOG"  # devstack.redshift.statement_log reads it


@dataclass(frozen=True)
class Recorded:
    """One statement as it reached an engine, and where it came from."""

    sql: str
    engine: str  # "redshift" (the stand-in's log) or "postgres" (the source's log)
    test: str  # the test that was running
    application: str = ""
    user: str = ""
    protocol: str = ""
    refused: str = ""

    def origin(self) -> str:
        who = ", ".join(
            part
            for part in (
                f"application {self.application!r}" if self.application else "",
                f"user {self.user}" if self.user else "",
                f"{self.protocol} protocol" if self.protocol else "",
            )
            if part
        )
        return f"{self.engine} statement sent during {self.test or '(no test)'} ({who})"


# ----------------------------------------------------------------------------- normalizing

_DIGITS = re.compile(r"\d{3,}")  # dates and counters in names; not md5, int8, float4
_HEX_RUN = re.compile(r"(?=[0-9a-f]*\d)[0-9a-f]{6,}")
_REPEATED_ITEM = re.compile(r"(\$1|0|'s')(?:\s*,\s*\1)+")
_REPEATED_TUPLE = re.compile(r"(\([^()]*\))(?:\s*,\s*\1)+")


def normalize(sql: str) -> str:
    """The statement's shape: strings → 's', numbers → 0, parameters → $1, hex runs and
    long digit runs in names (a test's schema, a staging table's dates) → h and 0, comments and
    whitespace collapsed, repeated list items and VALUES tuples → one. Grammar is kept."""
    out: list[str] = []
    for tok in tokenize(sql):
        if tok.kind == WS:
            out.append(" ")
        elif tok.kind == COMMENT:
            out.append(" ")
        elif tok.kind == STRING:
            out.append("'s'" if not tok.text.startswith("$") else tok.text)
        elif tok.kind == NUMBER:
            out.append("0")
        elif tok.kind == PARAM:
            out.append("$1")
        elif tok.kind in (WORD, QIDENT):
            out.append(_DIGITS.sub("0", _HEX_RUN.sub("h", tok.text)))
        else:
            out.append(tok.text)
    text = re.sub(r"\s+", " ", "".join(out)).strip().rstrip(";").strip()
    for pattern in (_REPEATED_ITEM, _REPEATED_TUPLE):
        text = pattern.sub(r"\1", text)
    return text


def statements_of(sql: str) -> list[str]:
    """The statements of a Query text (psycopg2 may send several at once)."""
    return split_statements(sql)


def distinct_shapes(recorded: Iterable[Recorded]) -> dict[str, list[Recorded]]:
    """{shape: the statements of that shape}; a text seen before is not tokenized again."""
    shapes: dict[str, list[Recorded]] = {}
    shapes_of_text: dict[str, list[str]] = {}
    for entry in recorded:
        if entry.sql not in shapes_of_text:
            shapes_of_text[entry.sql] = [normalize(statement) for statement in statements_of(entry.sql)]
        for shape in shapes_of_text[entry.sql]:
            shapes.setdefault(shape, []).append(entry)
    return shapes


# ----------------------------------------------------------------------------- parsing


@cache
def _linter(dialect: str):
    from sqlfluff.core import FluffConfig, Linter

    return Linter(config=FluffConfig(overrides={"dialect": dialect, "templater": "raw"}))


# sqlfluff's postgres dialect has no DECLARE ... CURSOR, FETCH or CLOSE (its redshift one has;
# streams.stream_rows reads both engines through them): the cursor's query is parsed alone,
# FETCH and CLOSE of a named cursor need no parse.
# psycopg2's named cursors (the export's peek of the slot, the validation's streams) wrap a
# query in DECLARE ... FOR, then FETCH and CLOSE it: the query is parsed, the protocol is not.
_NAME = r'(?:\w+|"[^"]+")'
_CURSOR_PREFIX = re.compile(
    rf"^declare {_NAME} (?:binary |insensitive |no scroll |scroll )*cursor (?:with hold |without hold )?for ",
    re.IGNORECASE,
)
_CURSOR_COMMAND = re.compile(
    rf"^(?:fetch (?:(?:forward|backward) )?(?:\d+|all|next)? ?(?:from|in) {_NAME}|close {_NAME})$", re.I
)
# PostgreSQL statements sqlfluff's postgres dialect (4.5) does not parse, though PostgreSQL does:
# SET TRANSACTION (the export's REPEATABLE READ snapshot).
_POSTGRES_ONLY_GAPS = re.compile(r"^set transaction isolation level (?:repeatable read|serializable)$", re.I)


def parse_error(sql: str, dialect: str) -> str | None:
    """None when `sql` parses in the sqlfluff dialect, else the first parse error."""
    if dialect == "postgres":
        if _CURSOR_COMMAND.match(sql) or _POSTGRES_ONLY_GAPS.match(sql.strip()):
            return None
        sql = _CURSOR_PREFIX.sub("", sql)
    parsed = _linter(dialect).parse_string(sql)
    if parsed.violations:
        return parsed.violations[0].desc()
    return None


@dataclass(frozen=True)
class Unparsable:
    shape: str
    error: str
    seen: list[Recorded]

    def describe(self) -> str:
        first = self.seen[0]
        return f"- {self.error}\n  statement: {first.sql.strip()[:600]}\n  from: {first.origin()}" + (
            f" (and {len(self.seen) - 1} more times)" if len(self.seen) > 1 else ""
        )


def unparsable(shapes: dict[str, list[Recorded]], dialect: str) -> list[Unparsable]:
    return [
        Unparsable(shape, error, seen)
        for shape, seen in shapes.items()
        if (error := parse_error(shape, dialect)) is not None
    ]


# ----------------------------------------------------------------------------- the logs


@dataclass(frozen=True)
class RunSpan:
    """A test's run in the log's clock: statements between start and the next test's start
    are its own."""

    start: float
    test: str
    gated: bool


def read_statement_log(path: Path, offset: int = 0) -> tuple[list[Recorded], list[RunSpan]]:
    """The stand-in's statement log (JSON lines; the test process adds {"test": ...} markers
    to the same file): the pipeline's statements with the test they were sent during, and
    the markers.

    The pipeline's are those of gated tests from clients that name themselves
    (application_name): redshift_connector always does (RedshiftSQLHook and the provider's
    COPY use it), the tests' own psycopg2 helpers (fixtures, assertions) do not. A helper may
    use PostgreSQL-only catalog casts that Redshift's leader node runs (::regclass)."""
    recorded: list[Recorded] = []
    spans: list[RunSpan] = []
    if not path.exists():
        return recorded, spans
    current = RunSpan(0.0, "", False)
    with path.open(encoding="utf-8") as log:
        log.seek(offset)  # what an earlier session wrote to a log named by the caller is not ours
        for line in log:
            entry = json.loads(line)
            if "test" in entry:
                current = RunSpan(entry["at"], entry["test"], entry["gated"])
                spans.append(current)
                continue
            if not current.gated or entry.get("truncated") or not entry.get("application"):
                continue
            recorded.append(
                Recorded(
                    entry["sql"],
                    "redshift",
                    current.test,
                    entry.get("application", ""),
                    entry.get("user", ""),
                    entry.get("protocol", ""),
                    entry.get("refused", ""),
                )
            )
    return recorded, spans


def span_at(spans: list[RunSpan], at: float) -> RunSpan | None:
    current = None
    for span in spans:
        if span.start > at:
            break
        current = span
    return current


# PostgreSQL's server log with log_line_prefix = SOURCE_LOG_PREFIX: one entry a prefixed
# line, its continuation lines unprefixed (a statement's further lines).
SOURCE_LOG_PREFIX = "<<gate %n %d|%a>> "
_SOURCE_ENTRY = re.compile(
    r"<<gate (?P<at>[\d.]+) (?P<db>[^|]*)\|(?P<app>.*?)>> (?P<level>\w+):  (?P<text>.*)"
)
_STATEMENT = re.compile(r"(?:statement|execute [^:]*): (?P<sql>.*)", re.DOTALL)


def read_source_log(path: Path, database: str, spans: list[RunSpan]) -> list[Recorded]:
    """The statements PostgreSQL logged for `database` (log_statement = all) during gated tests."""
    if not path.exists():
        return []
    entries: list[tuple[re.Match, list[str]]] = []
    with path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            match = _SOURCE_ENTRY.match(line.rstrip("\n"))
            if match:
                entries.append((match, [match.group("text")]))
            elif entries:
                entries[-1][1].append(line.rstrip("\n"))
    recorded = []
    for match, lines in entries:
        if match.group("db") != database or match.group("level") != "LOG":
            continue
        statement = _STATEMENT.match("\n".join(lines))
        if statement is None:
            continue
        span = span_at(spans, float(match.group("at")))
        if span is None or not span.gated:
            continue
        recorded.append(Recorded(statement.group("sql"), "postgres", span.test, match.group("app")))
    return recorded
