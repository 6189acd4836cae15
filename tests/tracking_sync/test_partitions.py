"""Partitions of a full refresh: the slicing maths (no database), then the cut of a real
table from its own statistics."""

from __future__ import annotations

import pytest

from tests.pipeline_helpers import fetch_rows
from tracking_sync.core.tables import ACTION
from tracking_sync.extract.partitions import (
    WHOLE,
    Partition,
    action_partitions,
    cut_points,
    partitions_from_cuts,
    plan_partitions,
)


def test_one_partition_is_the_whole_table_under_the_old_names():
    assert cut_points([1, 50, 100], 1, 100, 1) == []
    assert partitions_from_cuts([]) == [WHOLE] == [Partition(0, 1, None, None)]
    assert (WHOLE.name, WHOLE.part_prefix) == ("whole", "part-")


def test_an_even_histogram_is_cut_at_its_quantiles():
    bounds = list(range(0, 1001, 10))  # 100 buckets of equal rows
    assert cut_points(bounds, 0, 1000, 4) == [250, 500, 750]
    assert cut_points(bounds, 0, 1000, 3) == [333, 667]


def test_a_skewed_histogram_gives_partitions_of_equal_rows_not_equal_ids():
    # Equal-frequency buckets: half the rows have ids below 100, the other half 100..10,000.
    bounds = [0, 25, 50, 75, 100, 2575, 5050, 7525, 10_000]
    assert cut_points(bounds, 0, 10_000, 2) == [100]
    assert cut_points(bounds, 0, 10_000, 4) == [50, 100, 5050]


def test_between_bounds_ids_are_taken_as_evenly_spread():
    assert cut_points([0, 100], 0, 100, 4) == [25, 50, 75]
    assert cut_points([0, 10, 1000], 0, 1000, 4) == [5, 10, 505]


def test_without_statistics_min_and_max_are_split_evenly():
    assert cut_points([], 1, 1001, 4) == [251, 501, 751]
    assert cut_points(None, 7, 7, 3) == [7, 7], "one id: the other partitions are empty"


def test_more_partitions_than_ids_gives_empty_partitions_never_overlaps():
    cuts = cut_points([1, 2, 3], 1, 3, 8)
    assert cuts == sorted(cuts) and len(cuts) == 7


@pytest.mark.parametrize("n", [2, 3, 4, 7, 64])
def test_the_partitions_cover_every_id_exactly_once(n):
    cuts = cut_points(list(range(0, 10_001, 97)), 0, 10_000, n)
    partitions = partitions_from_cuts(cuts)
    assert len(partitions) == n and [p.index for p in partitions] == list(range(n))
    assert partitions[0].id_from is None and partitions[-1].id_to is None, "open at both ends"
    for before, after in zip(partitions, partitions[1:], strict=False):
        assert before.id_to == after.id_from, "adjacent: no gap, no overlap"
    for row_id in (-5, 0, 1, 96, 97, 5000, 9999, 10_000, 10**9):  # stale statistics too
        owners = [
            p
            for p in partitions
            if (p.id_from is None or row_id >= p.id_from) and (p.id_to is None or row_id < p.id_to)
        ]
        assert len(owners) == 1, (row_id, owners)


def test_partition_names_keep_parts_of_different_partitions_apart():
    p = partitions_from_cuts([10, 20, 30])[2]
    assert (p.name, p.part_prefix) == ("p02of04", "part-02-")
    assert Partition.from_xcom(p.to_xcom()) == p and Partition.from_xcom(None) == WHOLE


def _plan(**params):
    from datetime import UTC, datetime

    from tracking_sync.core.plan import plan_run

    return plan_run(params, None, None, run_after=datetime(2025, 3, 10, tzinfo=UTC))


@pytest.mark.parametrize(
    "plan",
    [
        pytest.param(_plan(mode="full_refresh", partitions=1), id="full refresh in one"),
        pytest.param(_plan(mode="full_refresh", partitions=4).with_load("changes"), id="capture run"),
    ],
)
def test_a_run_that_is_not_a_partitioned_full_refresh_exports_action_whole_without_a_query(plan):
    # No connection: plan_run asks the source nothing for these runs.
    assert action_partitions(plan, connection=None) == [WHOLE]


def test_a_partitioned_full_refresh_is_cut_from_the_source(stack, source):
    from devstack.demo_data import generate

    generate(stack.source_dsn, rows=4_000, seed=4)
    partitions = action_partitions(_plan(mode="full_refresh", partitions=3), source)
    assert [(p.index, p.count) for p in partitions] == [(0, 3), (1, 3), (2, 3)]


def test_a_real_table_is_cut_into_partitions_of_about_equal_rows(stack, source):
    from devstack.demo_data import generate

    generate(stack.source_dsn, rows=40_000, seed=3)  # analyzed: pg_stats has the histogram
    partitions = plan_partitions(source, ACTION, 4)
    counts = []
    for p in partitions:
        where = " and ".join(
            [f"id >= {p.id_from}"] * (p.id_from is not None) + [f"id < {p.id_to}"] * (p.id_to is not None)
        )
        counts.append(fetch_rows(source, f"select count(*) from action where {where}")[0][0])
    assert sum(counts) == 40_000
    assert max(counts) < 1.1 * min(counts), counts
    assert source.get_transaction_status() == 0, "no transaction left open"


def test_a_never_analyzed_table_is_cut_from_min_and_max(source):
    with source.cursor() as cursor:
        cursor.execute("create temp table action (like public.action)")
        cursor.execute(
            "insert into action (id, user_profile_id, session_id, action_type_id, "
            "action_time, is_async) select g, 1, 's', 1, now(), false "
            "from generate_series(1001, 2000) g"
        )
    partitions = plan_partitions(source, ACTION, 4)
    assert [p.id_to for p in partitions[:-1]] == [1251, 1500, 1750]  # 1001 + 999 / 4, rounded
