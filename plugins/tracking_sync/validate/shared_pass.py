"""The shared passes over `action`: each computed once per engine, read by the parity checks.

A check whose header says `-- base: <name>` reads the rows of
include/sql/parity/base/<name>.sql instead of scanning `action` itself. Before the checks
run, each engine computes each base once into a session temp table (both engines at
once); the checks then read its rows instead of `action`. The bases return what the
checks compare and no more: action_user_totals is the reference per-user query with each
user's row count (one row per user: ~24k at 10 M demo actions), action_days the per-day
rows, time checksum and query marks (one row per day). So no check regroups the table's
sessions (the session-day pass this replaced wrote ~1.4 M rows at 10 M actions for the
checks to group again). The measured goal: a full validation within 1.5x the reference
per-user query alone (bench/bench_dag.py, bench/bench_validation.py).

    with shared_passes(checks, source_conn, target_conn, window) as relations:
        ...  # check.render(..., base_relation=relations[check.base])

The temp tables are committed (the checks each run in a transaction of their own and
roll it back) and dropped at the end; temp tables are session-local on both engines,
so concurrent runs never see each other's.

In scope "users" (a capture run's touched users) the two bases come from one scan of
`action`, include/sql/parity/base/action_users_and_days.sql (GROUPING SETS), split into
their two tables: the target has no index on user_profile_id, so each pass read the whole
table to find the listed users' rows.

In scope "users" the listed users go into the SQL as an IN list: more than
`users_per_statement` of them are computed chunk by chunk (a CREATE TABLE AS for the
first, an INSERT for each next) into the same table, so no statement nears Redshift's
16 MB limit. A base reads the listed users' rows, so every user's rows land in one chunk; a
check that reads rows keyed otherwise (per day) sums them over the chunks.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tracking_sync.core.tables import ACTION
from tracking_sync.validate.parity import USERS, USERS_PER_STATEMENT, ParityCheck, base_path, render_base
from tracking_sync.validate.streams import CheckWindow

# A base that hashes many groups says how much memory its hash may take in its header:
# `-- work_mem: 1GB -- why` (PostgreSQL's setting, for the engines that take it). A base
# without runs at the session's default: PostgreSQL sizes a hash table by its estimate of
# the groups (one per row for an expression without statistics), so the per-day pass, 366
# groups, allocated 393 MB at 1GB and took 4.8 s at 10 M rows against 3.6 s at 4MB.
_WORK_MEM = re.compile(r"^--\s?work_mem:\s*([0-9]+[kMG]B)\b", re.MULTILINE)
# the target's action_time (the pipeline's DDL); the source's is timestamp (UTC)
TARGET_TIME_IS_ZONED = (
    next(c for c in ACTION.columns if c.name == "action_time").redshift_type == "timestamptz"
)


# Scope "users" computes these two bases in one scan of `action` (no index on the target:
# each pass read the whole table for the listed users' rows), then splits it into their
# tables: include/sql/parity/base/action_users_and_days.sql.
SCANNED_TOGETHER = ("action_user_totals", "action_days")
TOGETHER_BASE = "action_users_and_days"
# what each of them keeps of the combined pass's rows (its own columns, in its order)
_SPLIT = {
    "action_user_totals": (
        "user_profile_id, row_count, total_time_spent, session_avg_duration",
        "day is null",
    ),
    "action_days": ("day, row_count, seconds_into_day_sum, query_count, query_bytes", "day is not null"),
}


def base_table(name: str) -> str:
    return f"parity_{name}"


def base_work_mem(name: str) -> str | None:
    """The work_mem a base's header asks for (`-- work_mem: 1GB`), or None: the default."""
    found = _WORK_MEM.search(base_path(name).read_text())
    return found.group(1) if found else None


def user_chunks(
    window: CheckWindow, users_per_statement: int = USERS_PER_STATEMENT
) -> list[tuple[int, ...] | None]:
    """The window's users cut into statements: [None] outside scope "users", one empty
    chunk for an empty list (the base then renders `in (null)`: a table with no rows)."""
    if window.users is None:
        return [None]
    if not 1 <= users_per_statement <= USERS_PER_STATEMENT:
        raise ValueError(f"users_per_statement must be from 1 to {USERS_PER_STATEMENT}")
    users = window.users
    return [users[i : i + users_per_statement] for i in range(0, len(users), users_per_statement)] or [()]


def takes_planner_settings(conn: Any) -> bool:
    """True when the engine plans with PostgreSQL's planner and takes its settings: the
    source, and the Redshift stand-in (its backend is PostgreSQL). Redshift has no
    work_mem (it hashes per slice in its WLM slot's memory) and refuses the SHOW: the pass
    then runs there as written. Asked in a transaction of its own, rolled back."""
    cursor = conn.cursor()
    try:
        cursor.execute("show work_mem")
        cursor.fetchall()
        return True
    except Exception:  # noqa: BLE001 - the refusal is the answer (unknown parameter)
        return False
    finally:
        try:
            cursor.close()
        finally:
            conn.rollback()


def materialize(
    conn: Any,
    names: Sequence[str],
    schema: str,
    window: CheckWindow,
    users_per_statement: int = USERS_PER_STATEMENT,
    tune: bool | None = None,
    zoned_bounds: bool = False,
) -> float:
    """Compute each base into its temp table on one engine; the seconds it took.
    `tune`: set PostgreSQL's planner settings for the pass (None: when the engine takes
    them, takes_planner_settings). `zoned_bounds`: the engine's action_time is TIMESTAMPTZ
    (the window's bounds are rendered so, parity.render_template)."""
    started = time.perf_counter()
    if tune is None:
        tune = takes_planner_settings(conn)
    cursor = conn.cursor()
    try:
        cursor.execute("set timezone to 'UTC'")  # days are UTC; kept for the checks
        if tune:
            # the groups (a user's sessions: 1.4M out of 10M demo rows): PostgreSQL
            # estimates one group per row (or, on a freshly loaded table without
            # statistics, a few thousand), so with the default 4 MB it sorts the table
            # (or walks an index to the heap row by row) instead of hashing. Measured at
            # 2M rows: 4.8 s hashed in ~110 MB vs 6.8 s sorted. Both are for the passes
            # only (the checks read a few thousand rows), work_mem for the bases whose
            # header asks (base_work_mem). The stand-in's backend needs them as much as
            # the source: without,
            # bench_dag's validate sorted 10M rows on disk on the target side (3x the
            # reference query). Redshift has no such knobs (takes_planner_settings).
            # (SET, not SET LOCAL: what reaches the stand-in must read as Redshift's grammar)
            cursor.execute("set enable_sort = 'off'")
        together = window.scope == USERS and set(SCANNED_TOGETHER) <= set(names)
        for name in [TOGETHER_BASE] if together else []:
            _compute(cursor, name, schema, window, users_per_statement, tune, zoned_bounds)
            for part in SCANNED_TOGETHER:
                columns, rows = _SPLIT[part]
                cursor.execute(f"drop table if exists {base_table(part)}")
                cursor.execute(
                    f"create temp table {base_table(part)} as\n"
                    f"select {columns}\nfrom {base_table(name)}\nwhere {rows}"
                )
            cursor.execute(f"drop table {base_table(name)}")
        for name in names:
            if not (together and name in SCANNED_TOGETHER):
                _compute(cursor, name, schema, window, users_per_statement, tune, zoned_bounds)
        if tune:  # for the passes only (a rollback undoes the SETs too)
            cursor.execute("reset enable_sort")
            cursor.execute("reset work_mem")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        cursor.close()
    return time.perf_counter() - started


def _compute(
    cursor: Any,
    name: str,
    schema: str,
    window: CheckWindow,
    users_per_statement: int,
    tune: bool,
    zoned_bounds: bool,
) -> None:
    """One base into its temp table, chunk by chunk (a CREATE TABLE AS, then INSERTs)."""
    if tune:
        memory = base_work_mem(name)
        cursor.execute(f"set work_mem = '{memory}'" if memory else "reset work_mem")
    cursor.execute(f"drop table if exists {base_table(name)}")
    for number, users in enumerate(user_chunks(window, users_per_statement)):
        sql = render_base(
            name,
            schema=schema,
            window_start=window.window_start,
            window_end=window.window_end,
            scope=window.scope,
            users=users,
            zoned_bounds=zoned_bounds,
        )
        if number == 0:
            cursor.execute(f"create temp table {base_table(name)} as\n{sql}")
        else:
            cursor.execute(f"insert into {base_table(name)}\n{sql}")


def drop(conn: Any, names: Sequence[str], tuned: bool | None = None) -> None:
    """Drop the temp tables and reset what materialize set on the session (`tuned`: whether
    it set the planner settings; None: ask the engine)."""
    if tuned is None:
        tuned = takes_planner_settings(conn)
    cursor = conn.cursor()
    try:
        conn.rollback()
        for name in names:
            cursor.execute(f"drop table if exists {base_table(name)}")
        cursor.execute("reset timezone")
        if tuned:
            cursor.execute("reset work_mem")
        conn.commit()
    finally:
        cursor.close()


@contextlib.contextmanager
def shared_passes(
    checks: Sequence[ParityCheck],
    source_conn: Any,
    target_conn: Any,
    window: CheckWindow,
    users_per_statement: int = USERS_PER_STATEMENT,
    after_target_pass: Callable[[Any], None] | None = None,
) -> Iterator[dict[str, str]]:
    """The bases the checks read, computed on both engines at once: {name: temp table}.
    `seconds` of each side is kept on the returned mapping's `seconds` attribute.
    `users_per_statement`: the chunk of a scope "users" list (see the module docstring).
    `after_target_pass(target_conn)` runs in the target's thread once its pass is done,
    while the source's may still run (validate stages the rows it compares by id there)."""
    names = sorted({check.base for check in checks if check.base})
    relations = BaseRelations({name: base_table(name) for name in names})
    if not names:
        if after_target_pass is not None:
            after_target_pass(target_conn)
        yield relations
        return

    def one_engine(conn: Any, schema: str, zoned_bounds: bool) -> tuple[bool, float]:
        tuned = takes_planner_settings(conn)
        return tuned, materialize(
            conn, names, schema, window, users_per_statement, tune=tuned, zoned_bounds=zoned_bounds
        )

    def target_engine() -> tuple[bool, float]:
        done = one_engine(target_conn, window.target_schema, TARGET_TIME_IS_ZONED)
        if after_target_pass is not None:
            after_target_pass(target_conn)
        return done

    with ThreadPoolExecutor(max_workers=2) as pool:
        source = pool.submit(one_engine, source_conn, window.source_schema, False)
        target = pool.submit(target_engine)
        try:
            relations.tuned["source"], relations.seconds["source"] = source.result()
        finally:
            relations.tuned["target"], relations.seconds["target"] = target.result()
    try:
        yield relations
    finally:
        for side, conn in (("source", source_conn), ("target", target_conn)):
            with contextlib.suppress(Exception):  # a broken connection is closed by its owner
                drop(conn, names, tuned=relations.tuned[side])


class BaseRelations(dict):
    """{base name: temp table name}, with each engine's seconds spent computing them and
    whether its session took PostgreSQL's planner settings ("source"/"target" keys)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seconds: dict[str, float] = {}
        self.tuned: dict[str, bool] = {}
