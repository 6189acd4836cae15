"""What Redshift refuses and PostgreSQL would run: the stand-in refuses it too.

The stand-in runs Redshift SQL on PostgreSQL, which accepts much that Redshift does not.
A statement using one of these constructs is not sent to PostgreSQL as it is: it is
replaced by a call of pg_catalog.rs_refuse (compat/functions.sql), which raises the
error Redshift gives, so the transaction fails exactly as it would on Redshift (a
block is aborted; the client sees ErrorResponse in place of the statement's result).

What is refused, and the page of the Redshift Database Developer Guide it follows
(docs.aws.amazon.com/redshift/latest/dg/<page>):

- a statement over 16 MB (c_redshift-sql: "The maximum size for a single SQL
  statement is 16 MB");
- a VALUES list used as a constant table: VALUES only follows INSERT INTO t [(cols)]
  or MERGE's INSERT (c_unsupported-postgresql-features);
- INSERT ... ON CONFLICT and RETURNING: not in Redshift's grammar (r_INSERT_30, r_UPDATE,
  r_DELETE), a syntax error;
- CREATE INDEX (c_unsupported-postgresql-features: "Indexes"), sequences, and SERIAL, JSON(B),
  UUID, BYTEA, ... columns (c_unsupported-postgresql-features, c_unsupported-postgresql-datatypes);
- unnest(): PostgreSQL's set-returning array function has no Redshift counterpart
  (c_unsupported-postgresql-functions: "Array functions and operators");
- in a statement that reads or writes a table on the compute nodes (any table but the
  pg_* / information_schema catalog: c_sql-functions-leader-node): array constructors
  and subscripts, ``= ANY (array)``, array functions, and the leader-node-only or
  unsupported functions a pipeline could plausibly write (generate_series, now(),
  string_agg, ...). Redshift answers "Specified types or functions (one per INFO message)
  not supported on Redshift tables." with an INFO naming each one (c_SQL_functions_leader_node_only,
  c_unsupported-postgresql-functions). A query of the catalog alone runs on the leader
  node, where they work: the driver's and psql's catalog queries use them;
- a MERGE Redshift's grammar does not have: more than one WHEN MATCHED or WHEN NOT
  MATCHED clause, a clause with AND <condition>, DO NOTHING, NOT MATCHED BY SOURCE (r_MERGE).

Where Redshift's exact wording is not documented, the message is the stand-in's own, with
Redshift's SQLSTATE class (42601 syntax error, 0A000 feature not supported); every error
carries a HINT with the page and a way to write it that Redshift takes.

A token-level check like the rewrite's (tokens.py): it refuses only what it recognizes, and
passes everything else to PostgreSQL unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from devstack.redshift.tokens import PARAM, QIDENT, WORD, Token, significant, tokenize

MAX_STATEMENT_BYTES = 16 * 1024 * 1024  # docs: c_redshift-sql

SYNTAX_ERROR = "42601"
FEATURE_NOT_SUPPORTED = "0A000"
PROGRAM_LIMIT_EXCEEDED = "54000"

LEADER_NODE_MESSAGE = "Specified types or functions (one per INFO message) not supported on Redshift tables."

# Functions that Redshift runs on the leader node only, or not at all, and that a
# PostgreSQL-minded author could put in a query over user tables (c_SQL_functions_leader_node_only,
# c_unsupported-postgresql-functions). Not exhaustive: the common ones.
LEADER_NODE_FUNCTIONS = frozenset(
    {
        # set returning
        "generate_series",
        "generate_subscripts",
        # arrays
        "array_agg",
        "array_append",
        "array_cat",
        "array_length",
        "array_lower",
        "array_position",
        "array_positions",
        "array_prepend",
        "array_remove",
        "array_replace",
        "array_to_string",
        "array_upper",
        "cardinality",
        "string_to_array",
        "regexp_split_to_array",
        "regexp_split_to_table",
        "regexp_matches",
        # aggregates Redshift does not have (LISTAGG instead of string_agg)
        "string_agg",
        "every",
        # date and time: leader node only (GETDATE/SYSDATE on the compute nodes)
        "now",
        "age",
        "isfinite",
        "clock_timestamp",
        "statement_timestamp",
        "transaction_timestamp",
        "justify_days",
        "justify_hours",
        "justify_interval",
        # strings and math
        "format",
        "to_ascii",
        "get_bit",
        "get_byte",
        "set_bit",
        "set_byte",
        "overlay",
        "convert_from",
        "convert_to",
        "width_bucket",
        "setseed",
        "div",
        # system information
        "current_schema",
        "current_schemas",
        "has_database_privilege",
        "has_schema_privilege",
        "has_table_privilege",
        "pg_sleep",
    }
)
SEQUENCE_FUNCTIONS = frozenset({"nextval", "currval", "setval", "lastval"})
SERIAL_TYPES = frozenset({"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"})
# PostgreSQL column types Redshift does not have (c_unsupported-postgresql-datatypes)
UNSUPPORTED_TYPES = SERIAL_TYPES | {
    "jsonb",
    "json",
    "uuid",
    "bytea",
    "xml",
    "hstore",
    "money",
    "inet",
    "cidr",
}

# Cheap pre-filter: a statement without any of these words is not tokenized again
_SUSPECT = re.compile(
    r"\[|\b(?:values|any|some|all|conflict|returning|index|sequence|unnest|merge|"
    + "|".join(sorted(LEADER_NODE_FUNCTIONS | SEQUENCE_FUNCTIONS | UNSUPPORTED_TYPES))
    + r")\b",
    re.IGNORECASE,
)

_CATALOG_SCHEMAS = frozenset({"pg_catalog", "information_schema"})
_CLAUSE_END = frozenset(
    {
        "WHERE",
        "GROUP",
        "ORDER",
        "LIMIT",
        "UNION",
        "EXCEPT",
        "INTERSECT",
        "HAVING",
        "WINDOW",
        "OFFSET",
        "FETCH",
        "ON",
        "SET",
        "VALUES",
        "SELECT",
        "WHEN",
        "RETURNING",
        "FOR",
    }
)
_JOIN_WORDS = frozenset({"JOIN", "LEFT", "RIGHT", "INNER", "FULL", "CROSS", "NATURAL", "OUTER"})


@dataclass(frozen=True)
class Refusal:
    """The error Redshift gives for a statement, and where its documentation says so."""

    sqlstate: str
    message: str
    hint: str
    docs_page: str
    detail: str = ""
    info: tuple[str, ...] = ()  # INFO lines sent before the error, as Redshift's leader node does

    @property
    def full_hint(self) -> str:
        return (
            f"{self.hint} (docs.aws.amazon.com/redshift/latest/dg/{self.docs_page}; "
            "the local Redshift refuses what Redshift refuses instead of running it on PostgreSQL)"
        )


def too_large(size: int) -> Refusal:
    return Refusal(
        PROGRAM_LIMIT_EXCEEDED,
        f"Statement is too large. Statement Size: {size} bytes. Maximum Allowed: {MAX_STATEMENT_BYTES} bytes",
        "load large data with COPY from S3, or split the statement",
        "c_redshift-sql",
    )


def check_size(size: int) -> Refusal | None:
    return too_large(size) if size > MAX_STATEMENT_BYTES else None


def check_statement(sql: str) -> Refusal | None:
    """The refusal Redshift would answer `sql` (one statement) with, or None."""
    if not _SUSPECT.search(sql):
        return None
    sig = significant(tokenize(sql))
    if not sig:
        return None
    for check in (_grammar, _merge, _unsupported_objects):
        refusal = check(sig)
        if refusal is not None:
            return refusal
    return _leader_node_only(sig)


# --------------------------------------------------------------------------- grammar


def _syntax_error(token: Token, hint: str, page: str) -> Refusal:
    return Refusal(SYNTAX_ERROR, f'syntax error at or near "{token.text}"', hint, page)


def _grammar(sig: list[Token]) -> Refusal | None:
    for i, tok in enumerate(sig):
        if tok.is_word("VALUES") and not _values_of_insert(sig, i):
            return Refusal(
                SYNTAX_ERROR,
                f'syntax error at or near "{tok.text}"',
                "a VALUES list is not a table in Redshift (only INSERT INTO t VALUES ...): "
                "SELECT ... UNION ALL SELECT ..., or rows in a #temp table",
                "c_unsupported-postgresql-features",
                detail="VALUES list used as a constant table",
            )
        if tok.is_word("ON") and i + 1 < len(sig) and sig[i + 1].is_word("CONFLICT"):
            return _syntax_error(
                tok,
                "Redshift has no INSERT ... ON CONFLICT (constraints are not enforced): "
                "delete and insert in one transaction, or MERGE from a deduplicated staging table",
                "r_INSERT_30",
            )
        if tok.is_word("RETURNING"):
            return _syntax_error(
                tok,
                "Redshift's INSERT, UPDATE and DELETE have no RETURNING: select the rows in the same transaction",
                "r_INSERT_30",
            )
    return None


def _values_of_insert(sig: list[Token], i: int) -> bool:
    """Whether the VALUES at sig[i] is an INSERT's: INSERT INTO t [(cols)] VALUES, MERGE's
    THEN INSERT [(cols)] VALUES, or INSERT INTO t DEFAULT VALUES."""
    j = i - 1
    if j >= 0 and sig[j].is_word("DEFAULT"):
        j -= 1
    if j >= 0 and sig[j].is_op(")"):
        j = _opening_paren(sig, j) - 1
    if j >= 0 and sig[j].is_word("INSERT"):
        return True  # MERGE ... THEN INSERT [(cols)] VALUES
    while j >= 0 and sig[j].kind in (WORD, QIDENT) and not sig[j].is_word("INTO"):
        if j >= 1 and sig[j - 1].is_op("."):
            j -= 2
            continue
        j -= 1
        break
    return j >= 0 and sig[j].is_word("INTO") and j >= 1 and sig[j - 1].is_word("INSERT")


def _opening_paren(sig: list[Token], close: int) -> int:
    depth = 0
    for j in range(close, -1, -1):
        if sig[j].is_op(")"):
            depth += 1
        elif sig[j].is_op("("):
            depth -= 1
            if depth == 0:
                return j
    return 0


def _merge(sig: list[Token]) -> Refusal | None:
    if not sig[0].is_word("MERGE"):
        return None
    hint = (
        "Redshift's MERGE takes one WHEN MATCHED THEN UPDATE|DELETE and one WHEN NOT MATCHED "
        "THEN INSERT, without conditions (or REMOVE DUPLICATES)"
    )
    seen: dict[bool, int] = {True: 0, False: 0}
    for i, tok in enumerate(sig):
        if not tok.is_word("WHEN"):
            continue
        negated = i + 1 < len(sig) and sig[i + 1].is_word("NOT")
        k = i + (2 if negated else 1)
        if k >= len(sig) or not sig[k].is_word("MATCHED"):
            continue
        seen[negated] += 1
        if seen[negated] > 1:
            return _syntax_error(tok, hint, "r_MERGE")
        after = sig[k + 1] if k + 1 < len(sig) else None
        if after is not None and not after.is_word("THEN"):
            return _syntax_error(after, hint, "r_MERGE")
        action = sig[k + 2] if k + 2 < len(sig) else None
        if action is not None and action.is_word("DO"):
            return _syntax_error(action, hint, "r_MERGE")
    return None


def _unsupported_objects(sig: list[Token]) -> Refusal | None:
    words = [t.upper for t in sig[:4]]
    if sig[0].is_word("CREATE", "DROP", "ALTER") and (
        "INDEX" in words or ("UNIQUE" in words and "INDEX" in [t.upper for t in sig[:5]])
    ):
        return Refusal(
            FEATURE_NOT_SUPPORTED,
            f"{sig[0].text.upper()} INDEX is not supported",
            "Redshift has no indexes: choose the table's SORTKEY and DISTKEY in CREATE TABLE",
            "c_unsupported-postgresql-features",
        )
    if sig[0].is_word("CREATE", "DROP", "ALTER") and "SEQUENCE" in words:
        return _no_sequences()
    for i, tok in enumerate(sig):
        if tok.kind != WORD:
            continue
        low = tok.text.lower()
        calls = i + 1 < len(sig) and sig[i + 1].is_op("(") and not (i > 0 and sig[i - 1].is_op("."))
        if low in SEQUENCE_FUNCTIONS and calls:
            return _no_sequences()
        # a column definition's type: CREATE TABLE t (..., name type), ADD [COLUMN] name type,
        # ALTER COLUMN name TYPE type
        column_type = sig[0].is_word("CREATE", "ALTER") and (
            (
                i > 1
                and sig[i - 1].kind in (WORD, QIDENT)
                and (sig[i - 2].is_op("(", ",") or sig[i - 2].is_word("COLUMN", "ADD"))
            )
            or (i > 0 and sig[i - 1].is_word("TYPE"))
        )
        if low in UNSUPPORTED_TYPES and column_type:
            return Refusal(
                FEATURE_NOT_SUPPORTED,
                f'Column "{sig[i - 1].text}" has unsupported type "{low}"',
                "Redshift has no SERIAL (an IDENTITY(seed, step) column instead), no JSON or JSONB "
                "(SUPER or VARCHAR), no UUID, BYTEA (VARBYTE), XML, HSTORE, MONEY or network types",
                "c_unsupported-postgresql-datatypes",
            )
        if low == "unnest" and calls:
            return Refusal(
                "42883",
                "function unnest does not exist",
                "Redshift has no array functions: join a table of the values instead",
                "c_unsupported-postgresql-functions",
            )
    return None


def _no_sequences() -> Refusal:
    return Refusal(
        FEATURE_NOT_SUPPORTED,
        "Sequences are not supported",
        "Redshift has no sequences: an IDENTITY(seed, step) column",
        "c_unsupported-postgresql-features",
    )


# --------------------------------------------------------------------------- leader node


def _leader_node_only(sig: list[Token]) -> Refusal | None:
    found: list[str] = []
    for i, tok in enumerate(sig):
        nxt = sig[i + 1] if i + 1 < len(sig) else None
        prev = sig[i - 1] if i > 0 else None
        if tok.is_word("ARRAY") and nxt is not None and (nxt.is_op("[") or nxt.is_op("(")):
            found.append('Type "array" not supported.')
        elif tok.is_op("[") and prev is not None and (prev.kind in (WORD, QIDENT) or prev.is_op(")", "]")):
            if not (prev is not None and prev.is_word("ARRAY")):
                found.append("Array subscripts not supported.")
        elif tok.is_word("ANY", "SOME", "ALL") and nxt is not None and nxt.is_op("("):
            inner = sig[i + 2] if i + 2 < len(sig) else None
            if (
                prev is not None
                and prev.kind == "op"
                and not (inner is not None and inner.is_word("SELECT", "WITH"))
            ):
                found.append(f'Operator "{prev.text} {tok.text.upper()} (array)" not supported.')
        elif (
            tok.kind == WORD
            and nxt is not None
            and nxt.is_op("(")
            and not (prev is not None and prev.is_op("."))
        ):
            if tok.text.lower() in LEADER_NODE_FUNCTIONS:
                found.append(f'Function "{tok.text.lower()}()" not supported.')
    if not found:
        return None
    tables = compute_node_relations(sig)
    if not tables:
        return None  # the catalog alone, or no table: runs on the leader node
    return Refusal(
        FEATURE_NOT_SUPPORTED,
        LEADER_NODE_MESSAGE,
        "these run on the leader node only, in queries of the pg_* catalog or of no table; "
        "over tables: IN (...) or a join instead of arrays, LISTAGG for string_agg, GETDATE() "
        "for now(), a numbers table for generate_series",
        "c_sql-functions-leader-node",
        detail=f"tables on the compute nodes: {', '.join(tables)}",
        info=tuple(dict.fromkeys(found)),
    )


def compute_node_relations(sig: list[Token]) -> list[str]:
    """The tables a statement reads or writes that live on the compute nodes: every relation
    named after FROM, JOIN, INTO, UPDATE or USING but the pg_* / information_schema catalog
    and the statement's own CTE names."""
    ctes = {
        sig[i].text.lower()
        for i in range(1, len(sig) - 2)
        if sig[i].kind in (WORD, QIDENT)
        and sig[i + 1].is_word("AS")
        and sig[i + 2].is_op("(")
        and (sig[i - 1].is_word("WITH", "RECURSIVE") or sig[i - 1].is_op(","))
    }
    query_parens = _query_paren_depths(sig)
    found: list[str] = []
    for i, tok in enumerate(sig):
        if not tok.is_word("FROM", "JOIN", "INTO", "UPDATE", "USING", "TABLE"):
            continue
        if not query_parens[i]:
            continue  # EXTRACT(x FROM y), TRIM(... FROM ...), SUBSTRING(... FROM ...)
        if tok.is_word("UPDATE") and i > 0 and sig[i - 1].is_word("THEN", "FOR", "DO", "KEY"):
            continue
        if tok.is_word("TABLE") and not (i > 0 and sig[i - 1].is_word("TRUNCATE", "LOCK")):
            continue
        j = i + 1
        while j < len(sig):
            name, j = _relation_name(sig, j, column_list=tok.is_word("INTO"))
            if name is not None and name.lower() not in ctes and not _is_catalog(name):
                found.append(name)
            # skip an alias and go on at a comma of the same list
            depth = 0
            while j < len(sig):
                t = sig[j]
                if t.is_op("("):
                    depth += 1
                elif t.is_op(")"):
                    if depth == 0:
                        break
                    depth -= 1
                elif depth == 0 and (t.is_op(",", ";") or t.upper in _CLAUSE_END or t.upper in _JOIN_WORDS):
                    break
                j += 1
            if j < len(sig) and sig[j].is_op(",") and tok.is_word("FROM", "USING"):
                j += 1
                continue
            break
    return list(dict.fromkeys(found))


def _relation_name(sig: list[Token], j: int, column_list: bool = False) -> tuple[str | None, int]:
    """The dotted name at sig[j] (None for a subquery or a function call; with `column_list`,
    INTO t (a, b), a table), and the index after it."""
    while j < len(sig) and sig[j].is_word("ONLY", "LATERAL", "TABLE", "IF", "NOT", "EXISTS"):
        j += 1
    if j >= len(sig) or sig[j].kind not in (WORD, QIDENT):
        return None, j
    parts = [sig[j].text.strip('"')]
    j += 1
    while j + 1 < len(sig) and sig[j].is_op(".") and sig[j + 1].kind in (WORD, QIDENT):
        parts.append(sig[j + 1].text.strip('"'))
        j += 2
    if j < len(sig) and sig[j].is_op("(") and not column_list:
        return None, j  # a function in FROM, itself checked by name
    return ".".join(parts), j


def _is_catalog(name: str) -> bool:
    parts = name.lower().split(".")
    return parts[0] in _CATALOG_SCHEMAS or parts[-1].startswith("pg_")


def _query_paren_depths(sig: list[Token]) -> list[bool]:
    """For each token, whether it sits in a query: at the top, or in parentheses that open a
    SELECT or WITH (not a function's arguments)."""
    stack = [True]
    out = []
    for i, tok in enumerate(sig):
        if tok.is_op("("):
            out.append(stack[-1])
            nxt = sig[i + 1] if i + 1 < len(sig) else None
            stack.append(nxt is not None and nxt.is_word("SELECT", "WITH"))
            continue
        if tok.is_op(")"):
            if len(stack) > 1:
                stack.pop()
            out.append(stack[-1])
            continue
        out.append(stack[-1])
    return out


# --------------------------------------------------------------------------- the replacement


def refusal_sql(refusal: Refusal, sql: str = "") -> str:
    """The statement PostgreSQL runs instead: it raises Redshift's error. The client's
    parameters ($1, $2, ...) stay referenced, so an extended-protocol Bind still matches."""
    params = sorted({int(t.text[1:]) for t in tokenize(sql) if t.kind == PARAM}) if "$" in sql else []
    args = ", ".join(
        _literal(v)
        for v in (
            refusal.sqlstate,
            refusal.message,
            refusal.detail,
            refusal.full_hint,
            "\n".join(refusal.info),
        )
    )
    extra = "".join(f", ${n}::text" for n in params)
    return f"select pg_catalog.rs_refuse({args}){extra}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


__all__ = [
    "MAX_STATEMENT_BYTES",
    "Refusal",
    "check_size",
    "check_statement",
    "compute_node_relations",
    "refusal_sql",
]
