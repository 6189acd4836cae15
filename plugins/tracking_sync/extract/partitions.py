"""Partitions of a full refresh: the table's id range cut into N slices of about equal rows.

    partitions = plan_partitions(source_connection, ACTION, n=4)
    [Partition(0, 4, None, 251_073), Partition(1, 4, 251_073, 502_118), ...]

The cut points come from the source's own statistics, never from reading the table: the
planner's equal-frequency histogram of the id column (pg_stats.histogram_bounds: ~100
buckets of equal row counts at the default statistics target), or, when the table was never
analyzed, a linear split of [min(id), max(id)] (two probes of the primary key). The first
partition is open below and the last open above, so every row belongs to exactly one
partition however stale the statistics are; stale statistics only make the partitions less
even. Each partition's export is `where id >= id_from and id < id_to`, an index range scan.

Id ranges and not physical pages (ctid): the partitions are exported in separate
transactions, and an UPDATE between them moves a row to another page (it would be exported
twice or not at all), never to another id.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tracking_sync.core.plan import RunPlan
from tracking_sync.core.sql import render_sql
from tracking_sync.core.tables import ACTION, Table

ID_COLUMN = "id"


@dataclass(frozen=True)
class Partition:
    """Partition `index` of `count`: ids in [id_from, id_to); None = unbounded."""

    index: int = 0
    count: int = 1
    id_from: int | None = None
    id_to: int | None = None

    @property
    def name(self) -> str:
        """Its folder in the scratch area: `whole`, or p02of04."""
        return "whole" if self.count == 1 else f"p{self.index:02d}of{self.count:02d}"

    @property
    def part_prefix(self) -> str:
        """Its parts' names start with this: part-0000 (one partition, as ever), part-02-0000."""
        return "part-" if self.count == 1 else f"part-{self.index:02d}-"

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, data: dict[str, Any] | None) -> Partition:
        return cls(**data) if data else cls()


WHOLE = Partition()


def cut_points(histogram_bounds: list[int], lowest: int, highest: int, n: int) -> list[int]:
    """The n - 1 ids that cut the table into n partitions of about equal rows.

    `histogram_bounds` (B + 1 values) splits the rows into B buckets of equal counts, so the
    k/n quantile lies k*B/n buckets in; between two bounds ids are taken as evenly spread.
    Without a histogram, [lowest, highest] is split evenly. Cuts are non-decreasing; two
    equal cuts make an empty partition (a table with fewer distinct ids than partitions).
    """
    if n <= 1:
        return []
    bounds = sorted(histogram_bounds or [])
    if len(bounds) < 2:
        bounds = [lowest, highest]
    buckets = len(bounds) - 1
    cuts = []
    for k in range(1, n):
        position = k * buckets / n
        i = min(int(position), buckets - 1)
        low, high = bounds[i], bounds[i + 1]
        cuts.append(round(low + (high - low) * (position - i)))
    # Rounding can only keep the order or make neighbours equal; enforce it anyway.
    for k in range(1, len(cuts)):
        cuts[k] = max(cuts[k], cuts[k - 1])
    return cuts


def partitions_from_cuts(cuts: list[int]) -> list[Partition]:
    """n partitions from n - 1 cuts: (-inf, c1), [c1, c2), ..., [c(n-1), +inf)."""
    n = len(cuts) + 1
    edges: list[int | None] = [None, *cuts, None]
    return [Partition(k, n, edges[k], edges[k + 1]) for k in range(n)]


def plan_partitions(connection: Any, table: Table, n: int) -> list[Partition]:
    """The n partitions of `table` from its statistics (n == 1: the whole table, no query).
    `connection` is an open psycopg2 connection to the source; left without a transaction."""
    if n <= 1:
        return [WHOLE]
    sql = render_sql("postgres/select_id_statistics.sql", table=table.name, id_column=ID_COLUMN)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            histogram, lowest, highest = cursor.fetchone()
    finally:
        connection.rollback()
    if lowest is None:  # an empty table: n empty partitions, each an empty part
        lowest = highest = 0
    return partitions_from_cuts(cut_points(list(histogram or []), lowest, highest, n))


def action_partitions(plan: RunPlan, connection: Any) -> list[Partition]:
    """The partitions the run's action export is cut into (export_action is mapped over them):
    one, the whole slice, unless the plan is a partitioned full refresh; then `plan.partitions`
    of about equal rows from the source's statistics (one query, the table not read)."""
    if plan.partitions <= 1 or plan.applies_changes:
        return [WHOLE]
    return plan_partitions(connection, ACTION, plan.partitions)
