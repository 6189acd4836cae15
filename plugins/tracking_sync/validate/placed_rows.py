"""Rows compared by id on both engines, column by column: the rows a run changed outside
what its parity checks see whole.

A rerun carries rows that moved out of its interval to their new place and deletes the
old copies of rows that moved into it (tracking_sync.load.publish). Those ids are the only rows
outside the interval the run changed, so validate compares exactly them, column by
column: a row the rerun lost or misplaced fails the run, naming its id, while
differences in other intervals that a later run will reload (a backfill in progress)
are left to those runs.

A change-capture run applies inserts, updates and deletes on any day: validate compares
every id its batch touched the same way (CHANGED_ROWS_CHECK, up to MAX_CHANGED_IDS ids).
The parity checks sum times, counts and the query's bytes; this is what sees a changed
course_id or is_async.

The ids are read `ids_per_query` at a time, one query per engine per chunk: on the
source bound as an array (`id = any(%(ids)s)`, PostgreSQL), on Redshift rendered inline
as checked integers (`id in (...)`: ~110 kB at 10,000 ids, far below its 16 MB statement
limit). Only one chunk's rows are held at a time.

Read from `action`, the target's rows of a chunk cost a scan of the table (no index on id on
Redshift, nor on the stand-in's row store): 0.7 s of a 10 M-row nightly's validate. So
run_validation first stages them (`StagedRows`: every by-id check's ids, chunk by chunk,
into one session temp table) in the target's thread of the shared passes, right after its
pass, while the source's pass (the slower one in the runs measured) still runs; the
comparison then reads each chunk from that table.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracking_sync.core.sql import render_sql
from tracking_sync.core.tables import ACTION
from tracking_sync.validate.compare import DIFFERING_KEYS, TOP_DIFFERENCES, CheckResult, Difference
from tracking_sync.validate.parity import checked_integers, quote_identifier

CHECK_NAME = "rows_placed_outside_interval"
MAX_IDS = 10_000  # the publish carries at most this many rows (load.MAX_CARRIED_ROWS)
CHANGED_ROWS_CHECK = "rows_changed_by_the_batch"
# ~20 queries per engine; a `query` is up to 64 kB, so a chunk's rows are at most ~650 MB
# in the worst case and a few MB in practice (the demo's queries are ~100 bytes)
MAX_CHANGED_IDS = 200_000
IDS_PER_QUERY = 10_000
STAGED_TABLE = "validate_rows_by_id"


@dataclass(frozen=True)
class RowsById:
    """A by-id check for run_validation: `ids` compared column by column under `name`, at
    most `max_ids` of them (compare_rows_by_id)."""

    name: str
    ids: Sequence[int]
    max_ids: int = MAX_IDS

    def compared_ids(self) -> list[int]:
        return checked_integers(self.ids, "row id")[: self.max_ids]


@dataclass
class StagedRows:
    """The target's rows of some by-id checks' ids, staged in a session temp table of the
    target connection (`stage`), read chunk by chunk by compare_rows_by_id (`relation`),
    dropped by `drop`."""

    target_schema: str
    ids: list[int]
    ids_per_query: int = IDS_PER_QUERY
    relation: str | None = None  # set once staged
    seconds: float = 0.0

    @classmethod
    def of(
        cls, target_schema: str, checks: Sequence[RowsById], ids_per_query: int = IDS_PER_QUERY
    ) -> StagedRows:
        ids = sorted({row_id for check in checks for row_id in check.compared_ids()})
        return cls(quote_identifier(target_schema), ids, ids_per_query)

    def stage(self, target_conn: Any) -> None:
        """One scan of `action` per chunk of ids into STAGED_TABLE, committed (the checks that
        follow each roll back their own transaction)."""
        started = time.perf_counter()
        columns = [column.name for column in ACTION.columns]
        cursor = target_conn.cursor()
        try:
            cursor.execute(f"drop table if exists {STAGED_TABLE}")
            for number, chunk_start in enumerate(range(0, max(len(self.ids), 1), self.ids_per_query)):
                chunk = self.ids[chunk_start : chunk_start + self.ids_per_query] or ["null"]
                select = render_sql(
                    "redshift/stage_actions_by_id.sql", schema=self.target_schema, columns=columns, ids=chunk
                )
                into = (
                    f"create temp table {STAGED_TABLE} as" if number == 0 else f"insert into {STAGED_TABLE}"
                )
                cursor.execute(f"{into}\n{select}")
            target_conn.commit()
        except BaseException:
            target_conn.rollback()
            raise
        finally:
            cursor.close()
        self.relation = STAGED_TABLE
        self.seconds = time.perf_counter() - started

    def drop(self, target_conn: Any) -> None:
        if self.relation is None:
            return
        cursor = target_conn.cursor()
        try:
            target_conn.rollback()
            cursor.execute(f"drop table if exists {STAGED_TABLE}")
            target_conn.commit()
        finally:
            cursor.close()
        self.relation = None


def compare_rows_by_id(
    source_conn: Any,
    target_conn: Any,
    target_schema: str,
    ids: Sequence[int],
    top: int = TOP_DIFFERENCES,
    *,
    name: str = CHECK_NAME,
    max_ids: int = MAX_IDS,
    ids_per_query: int = IDS_PER_QUERY,
    staged: StagedRows | None = None,
) -> CheckResult:
    """Both engines' rows with these ids, as the export writes them, compared column by
    column, `ids_per_query` ids at a time; the check is named `name`. Beyond `max_ids`
    ids the lowest `max_ids` are compared and the result's note says so. `staged`: the
    target's rows were staged (StagedRows.stage, these ids among them): read from there."""
    if ids_per_query < 1 or max_ids < 1:
        raise ValueError(f"ids_per_query and max_ids must be at least 1: {ids_per_query}, {max_ids}")
    started = time.perf_counter()
    all_ids = checked_integers(ids, "row id")
    ids = all_ids[:max_ids]
    schema = quote_identifier(target_schema)
    relation = staged.relation if staged is not None and staged.relation else f"{schema}.action"
    columns = [column.name for column in ACTION.file_columns]
    time_index = columns.index("action_time")
    source_sql = render_sql(
        "postgres/select_actions_by_id.sql",
        columns=[column.select_expression for column in ACTION.file_columns],
    )
    result = CheckResult(name=name, keys=["id"])
    if len(all_ids) > max_ids:
        result.note = (
            f"{len(all_ids)} ids, the lowest {max_ids} compared by id; the others only "
            "through the parity checks"
        )
    days: set[str] = set()
    for chunk_start in range(0, len(ids), ids_per_query):
        chunk = ids[chunk_start : chunk_start + ids_per_query]
        source = _by_id(_fetch(source_conn, source_sql, {"ids": chunk}))
        target = _by_id(
            _fetch(target_conn, render_sql("redshift/select_actions_by_id.sql", relation=relation, ids=chunk))
        )
        result.source_rows += len(source)
        result.target_rows += len(target)
        for row_id in chunk:
            here, there = source.get(row_id), target.get(row_id)
            if here is None and there is None:
                continue  # deleted in the source, and gone from the target: as it should be
            if here != there and len(result.differing_keys) < DIFFERING_KEYS:
                result.differing_keys.append([row_id])  # what validate.pending matches by id
            if there is None:
                result.missing_in_target += 1
                result.missing_in_target_sample.append([row_id])
                days.add(_day(here[time_index]))
                continue
            if here is None:
                result.missing_in_source += 1
                result.missing_in_source_sample.append([row_id])
                days.add(_day(there[time_index]))
                continue
            differing = [(c, a, b) for c, a, b in zip(columns, here, there, strict=True) if a != b]
            if not differing:
                result.matching += 1
                continue
            result.differing += 1
            days.update({_day(here[time_index]), _day(there[time_index])})
            for column, a, b in differing:
                if len(result.top_differences) < top:
                    result.top_differences.append(Difference([row_id], column, a, b, None))
        result.missing_in_target_sample = result.missing_in_target_sample[:top]
        result.missing_in_source_sample = result.missing_in_source_sample[:top]
    result.days = sorted(days)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _fetch(conn: Any, sql: str, params: Any = None) -> list[tuple]:
    cursor = conn.cursor()
    try:
        cursor.execute("set timezone to 'UTC'")
        cursor.execute(sql, params) if params is not None else cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()
        conn.rollback()


def _by_id(rows: list[tuple]) -> dict[int, tuple]:
    return {row[0]: row for row in rows}


def _day(moment: Any) -> str:
    return moment.date().isoformat() if hasattr(moment, "date") else str(moment)[:10]
