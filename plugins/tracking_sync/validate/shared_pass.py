"""The shared passes over `action`: one scan per engine that several parity checks read.

A check whose header says `-- base: <name>` aggregates the rows of
include/sql/parity/base/<name>.sql instead of scanning `action` itself. Before the checks
run, each engine computes each base once into a session temp table (both engines at
once); the checks then read ~250k grouped rows instead of 10 M actions, so all checks
together cost about one scan of the table on each engine (the measured goal: a full
validation within 1.5x the reference per-user query alone, bench/bench_validation.py).

    with shared_passes(checks, source_conn, target_conn, window) as relations:
        ...  # check.render(..., base_relation=relations[check.base])

The temp tables are committed (the checks each run in a transaction of their own and
roll it back) and dropped at the end; temp tables are session-local on both engines,
so concurrent runs never see each other's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tracking_sync.validate.dialect import POSTGRESQL, engine_dialect
from tracking_sync.validate.parity import ParityCheck, render_base
from tracking_sync.validate.streams import CheckWindow

POSTGRES_WORK_MEM = "256MB"


def base_table(name: str) -> str:
    return f"parity_{name}"


def materialize(conn: Any, names: Sequence[str], schema: str, window: CheckWindow) -> float:
    """Compute each base into its temp table on one engine; the seconds it took."""
    started = time.perf_counter()
    dialect = engine_dialect(conn)
    cursor = conn.cursor()
    try:
        cursor.execute("set timezone to 'UTC'")  # days are UTC; kept for the checks
        if dialect == POSTGRESQL:
            # ~250k groups (a session's actions of a day) out of 10M rows: PostgreSQL
            # estimates one group per row, so with the default 4 MB it sorts the table (or
            # walks an index to the heap row by row) instead of hashing. Measured at 2M
            # rows: 4.8 s hashed in ~110 MB vs 6.8 s sorted; the checks over the pass
            # spilled their hashes at 4 MB too (2.2 s for 250k rows). work_mem stays for
            # the validation's session (drop() resets it), enable_sort is for the pass
            # only. Redshift has no such knobs (it hashes per slice in its WLM slot).
            cursor.execute(f"set work_mem = '{POSTGRES_WORK_MEM}'")
            cursor.execute("set local enable_sort = off")
        for name in names:
            sql = render_base(
                name,
                schema=schema,
                window_start=window.window_start,
                window_end=window.window_end,
                scope=window.scope,
            )
            cursor.execute(f"drop table if exists {base_table(name)}")
            cursor.execute(f"create temp table {base_table(name)} as\n{sql}")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        cursor.close()
    return time.perf_counter() - started


def drop(conn: Any, names: Sequence[str]) -> None:
    """Drop the temp tables and reset what materialize set on the session."""
    dialect = engine_dialect(conn)
    cursor = conn.cursor()
    try:
        conn.rollback()
        for name in names:
            cursor.execute(f"drop table if exists {base_table(name)}")
        cursor.execute("reset timezone")
        if dialect == POSTGRESQL:
            cursor.execute("reset work_mem")
        conn.commit()
    finally:
        cursor.close()


@contextlib.contextmanager
def shared_passes(
    checks: Sequence[ParityCheck], source_conn: Any, target_conn: Any, window: CheckWindow
) -> Iterator[dict[str, str]]:
    """The bases the checks read, computed on both engines at once: {name: temp table}.
    `seconds` of each side is kept on the returned mapping's `timings` attribute."""
    names = sorted({check.base for check in checks if check.base})
    relations = BaseRelations({name: base_table(name) for name in names})
    if not names:
        yield relations
        return
    with ThreadPoolExecutor(max_workers=2) as pool:
        source = pool.submit(materialize, source_conn, names, window.source_schema, window)
        target = pool.submit(materialize, target_conn, names, window.target_schema, window)
        try:
            relations.seconds["source"] = source.result()
        finally:
            relations.seconds["target"] = target.result()
    try:
        yield relations
    finally:
        for conn in (source_conn, target_conn):
            with contextlib.suppress(Exception):  # a broken connection is closed by its owner
                drop(conn, names)


class BaseRelations(dict):
    """{base name: temp table name}, with each engine's seconds spent computing them."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seconds: dict[str, float] = {}
