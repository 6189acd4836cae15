"""Late corrections that move a row between intervals never leave the target silently wrong.

Days A and B are loaded; in the source a row's action_time moves from A to B (or from B
into A); only A is rerun. The rerun carries the row to its new place (or removes its old
copy), and the target equals the source row for row. Validate compares the rows a rerun
placed outside its interval by id, so a row lost there fails the run, naming it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.dag_helpers import run_dag
from tests.e2e.test_validation import _report as validation_report
from tests.pipeline_helpers import assert_same_rows, fetch_rows, source_rows, target_rows

pytestmark = pytest.mark.integration

FULL_REFRESH = {"mode": "full_refresh"}


def day(n: int) -> datetime:
    return datetime(2025, 3, n, tzinfo=UTC)


def _one_id(connection, lo: datetime, hi: datetime, offset: int = 0) -> int:
    (row,) = fetch_rows(
        connection,
        "select id from action where action_time >= %s and action_time < %s order by id limit 1 offset %s",
        (lo.replace(tzinfo=None), hi.replace(tzinfo=None), offset),
    )
    return row[0]


def _shift(connection, action_id: int, days: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "update action set action_time = action_time + %s * interval '1 day' where id = %s",
            (days, action_id),
        )
    connection.commit()


@pytest.fixture
def loaded(pipeline_dag, stack, source, target):
    """Demo data over 2025-03-01..03-07, fully loaded; the nightly run of 03-02 done."""
    from devstack.demo_data import generate

    generate(stack.source_dsn, rows=6_000, seed=11, users=60, period_start="2025-03-01", period_days=7)
    run_dag(pipeline_dag, logical_date=day(8), conf=FULL_REFRESH)
    return pipeline_dag


def test_a_rerun_carries_a_row_that_moved_out_of_its_interval(loaded, source, target, capfd, caplog):
    moved_out = _one_id(source, day(2), day(3))  # A = 03-02 -> B = 03-03
    moved_in = _one_id(source, day(3), day(4), offset=3)  # B -> A
    _shift(source, moved_out, +1)
    _shift(source, moved_in, -1)
    capfd.readouterr()

    run_dag(loaded, logical_date=day(3))  # rerun A only (a manual run moves the day before it)

    output = "".join(capfd.readouterr()) + caplog.text
    assert "carrying 1 action rows that moved out of the interval" in output
    assert str(moved_out) in output
    assert_same_rows(source_rows(source), target_rows(target), "after rerunning A")
    (count,) = fetch_rows(target, "select count(*) from tracking.action where id = %s", (moved_in,))[0]
    assert count == 1, "a row that moved into A is not kept twice"


def test_a_row_deleted_in_the_source_goes_and_is_not_mistaken_for_a_move(
    loaded, source, target, capfd, caplog
):
    gone = _one_id(source, day(4), day(5))
    with source.cursor() as cursor:
        cursor.execute("delete from action where id = %s", (gone,))
    source.commit()
    capfd.readouterr()
    run_dag(loaded, logical_date=day(5))
    assert "carrying" not in "".join(capfd.readouterr()) + caplog.text
    assert_same_rows(source_rows(source), target_rows(target), "after rerunning the day")


def test_validate_checks_the_rows_a_rerun_placed_outside_its_interval(loaded, source, target):
    moved_out = _one_id(source, day(2), day(3))
    _shift(source, moved_out, +2)  # A = 03-02 -> 03-04

    run = run_dag(loaded, logical_date=day(3))

    report = validation_report(run)
    placed = next(c for c in report["checks"] if c["name"] == "rows_placed_outside_interval")
    assert (placed["source_rows"], placed["matching"], placed["passed"]) == (1, 1, True)


def test_a_row_the_rerun_lost_outside_its_interval_fails_validation_naming_it(loaded, source, target):
    """The check itself: had the publish lost the carried row, validate names it and its day."""
    from tracking_sync.core.plan import plan_run
    from tracking_sync.validate.run import validate_for_run

    lost = _one_id(source, day(4), day(5))
    with target.cursor() as cursor:
        cursor.execute("delete from tracking.action where id = %s", (lost,))
    target.commit()
    plan = plan_run({}, day(2), day(3))

    report = validate_for_run(plan, source, target, run_id="test", placed_outside_ids=[lost])

    assert not report.passed
    assert "rows_placed_outside_interval: 1 missing in target" in report.summary()
    assert "2025-03-04" in report.days_to_backfill
    assert any("--from-date 2025-03-04" in step for step in report.repair)
