"""Parity checks: the SQL files under include/sql/parity/ and their headers.

A parity check is one query, written once in the dialect PostgreSQL and Redshift
share, that must give the same answer on both engines. Adding a check is adding
a file; its header comment declares how to compare the two results:

    -- key: user_profile_id                 columns that identify a row (the query
                                            must `order by` them)
    -- value: total_time_spent tolerance 0.001 -- why this much
    --   (continuation lines are indented by at least two spaces)
    -- days: day                            optional: a key column holding a UTC date;
                                            a difference there names a day to backfill
    -- base: action_users_and_days          optional: the shared pass it reads as
                                            {{ base }} (include/sql/parity/base/<name>.sql)
    -- params: schema, window_start, ...    the Jinja variables it uses (documentation
                                            for the reader: accepted, not read)

Every column of the result must be a key or a declared value. The template is
rendered with:

    schema        the schema holding `action` and `action_type` (a validated identifier)
    window_start  start of the run's data interval, as a SQL timestamp literal (UTC)
    window_end    end of the run's data interval, as a SQL timestamp literal (UTC)
    scope         "scoped", "full" or "users". full: everything before window_end.
                  scoped: what the interval touched, each check saying how in its
                  header (the interval's users with their whole history before
                  window_end; the interval's days) so the cost grows with the
                  interval, not the table. users: the listed users (a change-capture
                  batch's), each with their whole history before window_end
    users         (scope "users" only) the listed user ids as a SQL list, "1, 2, 3",
                  for `user_profile_id in ({{ users }})`; "null" when the list is
                  empty (valid SQL on both engines, no row matches). Integers checked
                  in Python, at most USERS_PER_STATEMENT of them in one statement:
                  the shared pass computes longer lists chunk by chunk
    base          (checks declaring a base) the relation holding the shared pass:
                  validate's session temp table, or the base inlined as a subquery

A base is one scan of `action` that several checks aggregate: validate runs each base
once per engine (tracking_sync.validate.shared_pass) so that all checks together cost about one
scan. A check without a base runs on its own, as written.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tracking_sync.core.errors import ParityCheckError
from tracking_sync.core.sql import SQL_DIR

PARITY_SQL_DIR = SQL_DIR / "parity"
BASE_SQL_DIR = PARITY_SQL_DIR / "base"
SCOPES = ("scoped", "full", "users")
USERS = "users"
# Redshift refuses a statement over 16 MB (doc: c_redshift-sql). An id of an INTEGER
# column is at most 11 characters, 13 with its ", ": 100k users are ~1.3 MB, far below.
# Redshift evaluates an IN list of more than 10 values as a scalar array (doc:
# r_in_condition), PostgreSQL hashes it: the list costs a lookup per row, not a scan of it.
USERS_PER_STATEMENT = 100_000
_BIGINT = (-(2**63), 2**63 - 1)

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,126}")
# `params` is recognised (with its continuation lines) so that it ends the field before it;
# it documents the template for the reader and is not read.
_FIELD = re.compile(r"--\s?(key|value|days|base|params):\s*(.*)")
_VALUE = re.compile(r"(?P<column>\w+)\s+tolerance\s+(?P<tolerance>[0-9.eE+-]+)\s*(?:--\s*)?(?P<why>.*)")


@dataclass(frozen=True)
class ValueColumn:
    name: str
    tolerance: float
    why: str


@dataclass(frozen=True)
class ParityCheck:
    name: str
    path: Path
    template: str
    keys: tuple[str, ...]
    values: tuple[ValueColumn, ...]
    day_key: str | None = None
    base: str | None = None  # name of the shared pass it reads (include/sql/parity/base/)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.keys + tuple(value.name for value in self.values)

    def render(
        self,
        *,
        schema: str,
        window_start: datetime,
        window_end: datetime,
        scope: str,
        base_relation: str | None = None,
        users: Sequence[int] | None = None,
    ) -> str:
        """The query for one engine: identifiers validated, timestamps as checked literals.

        A check with a base reads `base_relation` (a temp table holding the shared pass)
        or, when None, the base inlined as a subquery: the check then runs alone.
        `users`: the listed users of scope "users" (None in the other scopes)."""
        bounds = {
            "schema": schema,
            "window_start": window_start,
            "window_end": window_end,
            "scope": scope,
            "users": users,
        }
        extra = {}
        if self.base is not None:
            if base_relation is None:
                base_relation = f"(\n{render_base(self.base, **bounds)}\n) as {self.base}"
            else:
                quote_identifier(base_relation)
            extra["base"] = base_relation
        return render_template(self.template, **bounds, **extra)


def render_template(
    template: str,
    *,
    schema: str,
    window_start: datetime,
    window_end: datetime,
    scope: str,
    users: Sequence[int] | None = None,
    zoned_bounds: bool = False,
    **extra: str,
) -> str:
    """A parity template for one engine: identifiers validated, timestamps as checked
    literals, the users of scope "users" as a list of checked integers. `zoned_bounds`:
    the window's bounds as TIMESTAMPTZ literals, for an engine whose action_time is
    TIMESTAMPTZ (the target): compared with a TIMESTAMP literal, PostgreSQL converts every
    row's value to compare it (a time zone lookup per row, ~5 % of the shared pass)."""
    import jinja2
    from jinja2 import meta

    if scope not in SCOPES:
        raise ParityCheckError(f"validation scope {scope!r} is not one of {list(SCOPES)}")
    if window_start > window_end:
        raise ParityCheckError(f"window start {window_start} is after window end {window_end}")
    if (scope == USERS) != (users is not None):
        raise ParityCheckError(
            f"scope 'users' needs the list of users (an empty list compares no user), and the "
            f"other scopes take none: scope {scope!r} with users={'None' if users is None else '[...]'}"
        )
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    parsed = env.parse(template)
    if users is not None and "users" in meta.find_undeclared_variables(parsed):
        # rendered only where a template reads it: a check over the shared pass's temp
        # table does not, and must not be refused for a list the pass took in chunks
        extra["users"] = user_list(users)
    sql = env.from_string(parsed).render(
        schema=quote_identifier(schema),
        window_start=timestamp_literal(window_start, zoned_bounds),
        window_end=timestamp_literal(window_end, zoned_bounds),
        scope=scope,
        **extra,
    )
    return sql.strip().rstrip(";")


def checked_integers(values: Iterable[object], what: str = "user id") -> list[int]:
    """Distinct integers, ascending, from ints or decimal digit strings; anything else (a
    bool, a float, text that is not a number) is refused, naming it. What goes into SQL
    is each integer's own str(), never the text it came from."""
    checked = set()
    for value in values:
        if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
            number = int(value)
        elif isinstance(value, bool):
            number = None
        else:
            try:
                number = operator.index(value)  # int and integer types of drivers (not float)
            except TypeError:
                number = None
        if number is None or not _BIGINT[0] <= number <= _BIGINT[1]:
            raise ParityCheckError(f"{what} {value!r} is not an integer (a 64-bit whole number)")
        checked.add(number)
    return sorted(checked)


def user_list(users: Sequence[int]) -> str:
    """The users as the inside of a SQL IN list: "1, 2, 3", or "null" for none (`in (null)`
    is valid on both engines and matches no row). At most USERS_PER_STATEMENT users."""
    checked = checked_integers(users)
    if len(checked) > USERS_PER_STATEMENT:
        raise ParityCheckError(
            f"{len(checked)} users in one statement, more than {USERS_PER_STATEMENT} (Redshift "
            "refuses a statement over 16 MB): render them in chunks of at most that many "
            "(run_validation computes the shared pass chunk by chunk)"
        )
    return ", ".join(str(user) for user in checked) or "null"


def base_path(name: str) -> Path:
    quote_identifier(name)
    return BASE_SQL_DIR / f"{name}.sql"


def render_base(name: str, **bounds) -> str:
    """The shared pass `name` (include/sql/parity/base/<name>.sql) for one engine."""
    path = base_path(name)
    if not path.is_file():
        raise ParityCheckError(f"shared pass {name!r} not found: expected {path}")
    return render_template(path.read_text(), **bounds)


def quote_identifier(name: str) -> str:
    """A plain lower-case identifier, or an error naming what is allowed (never quoted SQL)."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ParityCheckError(
            f"schema {name!r} is not a plain identifier: use lower-case letters, digits and "
            "underscores, starting with a letter or underscore"
        )
    return name


def timestamp_literal(moment: datetime, zoned: bool = False) -> str:
    """`timestamp 'YYYY-MM-DD HH:MM:SS.ffffff'` in UTC, from a datetime (never from text);
    `zoned`: `cast('YYYY-MM-DD HH:MM:SS.ffffff+00' as timestamptz)`, the same instant, for
    a TIMESTAMPTZ column (a constant on both engines: the literal is read at parse time).

    A literal rather than a bound parameter because the check runs inside
    DECLARE ... CURSOR on Redshift. It is TIMESTAMP, not TIMESTAMPTZ: the source
    column is timestamp (UTC), and comparing it with a timestamptz would cast the
    column and lose its index; on a TIMESTAMPTZ target the literal is read in the
    session's time zone, which validate sets to UTC.
    """
    if not isinstance(moment, datetime):
        raise ParityCheckError(f"window bound {moment!r} is not a datetime")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    text = moment.isoformat(sep=" ", timespec="microseconds")
    if zoned:
        return f"cast('{text}+00' as timestamptz)"
    return f"timestamp '{text}'"


def parse_check(path: Path) -> ParityCheck:
    """Read one check file and its header (see the module docstring for the format)."""
    text = path.read_text()
    keys: tuple[str, ...] = ()
    values: list[ValueColumn] = []
    day_key = None
    base = None
    current: list[str] | None = None  # the field a continuation line extends
    fields: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        matched = _FIELD.fullmatch(stripped)
        if matched:
            current = [matched.group(2)]
            fields.append((matched.group(1), current))
        elif current is not None and re.match(r"--\s{2,}\S", stripped):
            current.append(stripped[2:].strip())
        else:
            current = None
    for kind, parts in fields:
        body = " ".join(parts).strip()
        if kind == "key":
            keys = tuple(column.strip() for column in body.split(",") if column.strip())
        elif kind == "days":
            day_key = body.split()[0] if body else None
        elif kind == "base":
            base = body.split()[0] if body else None
            if base is None or not _IDENTIFIER.fullmatch(base) or not base_path(base).is_file():
                raise ParityCheckError(
                    f"{path}: base {body!r} must name a file include/sql/parity/base/<name>.sql"
                )
        elif kind == "value":
            matched = _VALUE.fullmatch(body)
            if not matched:
                raise ParityCheckError(
                    f"{path}: value line {body!r} must read '-- value: <column> tolerance <number> -- <why>'"
                )
            try:
                tolerance = float(matched.group("tolerance"))
            except ValueError:
                raise ParityCheckError(
                    f"{path}: tolerance {matched.group('tolerance')!r} of "
                    f"{matched.group('column')} is not a number"
                ) from None
            if not matched.group("why").strip():
                raise ParityCheckError(
                    f"{path}: the tolerance of {matched.group('column')} needs a justification "
                    "after '--' (why this much difference is not an error)"
                )
            values.append(ValueColumn(matched.group("column"), tolerance, matched.group("why").strip()))
    if not keys:
        raise ParityCheckError(f"{path}: the header needs a '-- key: <column>[, <column>]' line")
    if not values:
        raise ParityCheckError(f"{path}: the header needs at least one '-- value: ...' line")
    if day_key is not None and day_key not in keys:
        raise ParityCheckError(f"{path}: days column {day_key!r} must be one of the keys {list(keys)}")
    return ParityCheck(
        name=path.stem,
        path=path,
        template=text,
        keys=keys,
        values=tuple(values),
        day_key=day_key,
        base=base,
    )


def load_checks(directory: Path = PARITY_SQL_DIR) -> list[ParityCheck]:
    """Every *.sql under `directory`, by file name."""
    checks = [parse_check(path) for path in sorted(directory.glob("*.sql"))]
    if not checks:
        raise ParityCheckError(f"no parity checks (*.sql) under {directory}")
    return checks
