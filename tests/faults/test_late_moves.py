"""Late corrections that move a row between intervals never leave the target silently wrong.

Days A and B are loaded; in the source a row's action_time moves from A to B (or from B
into A); only A is rerun. The rerun carries the row to its new place (or removes its old
copy), and the target equals the source row for row. Scoped validation compares the
interval's users up to the target's high-water mark, so a row lost after the interval's
end is seen by the next scoped run.
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


def test_scoped_validation_sees_a_row_lost_after_the_interval_end(loaded, source, target):
    """Validate up to the target's high-water mark: a user of A whose row in B is missing
    from the target fails A's scoped run, naming that user."""
    (user, lost) = fetch_rows(
        source,
        "select a.user_profile_id, b.id from action a join action b using (user_profile_id) "
        "where a.action_time >= '2025-03-02' and a.action_time < '2025-03-03' "
        "and b.action_time >= '2025-03-05' and b.action_time < '2025-03-06' order by b.id limit 1",
    )[0]
    with target.cursor() as cursor:
        cursor.execute("delete from tracking.action where id = %s", (lost,))
    target.commit()

    run = run_dag(loaded, logical_date=day(3), expect="failed")

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["validate"] == "failed" and states["replace_action_rows"] == "success"
    report = validation_report(run)
    per_user = next(c for c in report["checks"] if c["name"] == "per_user_session_totals")
    assert [d["key"] for d in per_user["top_differences"]][:1] == [[user]]
    assert report["window_end"] > "2025-03-07", "validated up to the target's high-water mark"
