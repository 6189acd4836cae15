"""The sorted-stream comparison (pure: rows in, counts out), and the days it names."""

from __future__ import annotations

from datetime import date

import pytest

from tracking_sync.core.errors import ParityCheckError
from tracking_sync.validate.compare import compare_sorted, merge_by_key
from tracking_sync.validate.diagnosis import repair_steps
from tracking_sync.validate.parity import parse_check


def _check(tmp_path, day_key=False):
    path = tmp_path / "c.sql"
    days = "-- days: k\n" if day_key else ""
    path.write_text(f"-- key: k\n{days}-- value: v tolerance 0.01 -- test\nselect 1\n")
    return parse_check(path)


def test_compare_counts_missing_differing_and_keeps_the_largest(tmp_path):
    check = _check(tmp_path)
    source = [(1, 1.0), (2, 2.0), (3, 3.0), (5, 5.0), (6, 6.0), (7, 7.0)]
    target = [(1, 1.005), (2, 2.5), (4, 4.0), (5, 9.0), (6, None), (7, 7.2)]
    result = compare_sorted(check, iter(source), iter(target), top=2)
    assert (result.source_rows, result.target_rows) == (6, 6)
    assert (result.matching, result.differing) == (1, 4)  # 1 within tolerance; 2, 5, 6, 7 differ
    assert (result.missing_in_target, result.missing_in_source) == (1, 1)
    assert result.missing_in_target_sample == [[3]] and result.missing_in_source_sample == [[4]]
    # NULL against a value ranks first, then the largest delta
    assert [(d.key, d.delta) for d in result.top_differences] == [([6], None), ([5], 4.0)]


def test_compare_refuses_unordered_keys(tmp_path):
    with pytest.raises(ParityCheckError, match="ascending order"):
        compare_sorted(_check(tmp_path), iter([(2, 1), (1, 1)]), iter([]))


def test_differing_days_become_backfill_ranges(tmp_path):
    check = _check(tmp_path, day_key=True)
    days = [date(2025, 3, d) for d in (1, 2, 3, 4, 9)]
    source = [(d, 1) for d in days]
    target = [(days[0], 1), (days[1], 2), (days[2], 2), (days[4], 1), (date(2025, 3, 12), 1)]
    result = compare_sorted(check, iter(source), iter(target))
    assert result.days == ["2025-03-02", "2025-03-03", "2025-03-04", "2025-03-12"]
    steps = repair_steps(result.days)
    assert (
        "CLI: airflow backfill create --dag-id postgres_to_redshift --from-date 2025-03-02 "
        "--to-date 2025-03-04 --reprocess-behavior completed --max-active-runs 1"
    ) in steps
    assert any("--from-date 2025-03-12 --to-date 2025-03-12" in step for step in steps)
    assert any(step.startswith("UI: postgres_to_redshift > Trigger > Backfill") for step in steps)


def test_merge_pairs_keys_in_order_with_none_for_the_side_that_lacks_one(tmp_path):
    source = [(1, 1.0), (3, 3.0)]
    target = [(2, 2.0), (3, 3.5)]
    pairs = list(merge_by_key(_check(tmp_path), iter(source), iter(target)))
    assert pairs == [((1,), (1.0,), None), ((2,), None, (2.0,)), ((3,), (3.0,), (3.5,))]


def test_every_differing_key_is_kept_for_the_drill_down(tmp_path):
    check = _check(tmp_path)
    source = [(k, 1.0) for k in range(5)]
    target = [(0, 1.0), (1, 2.0), (3, 1.0), (4, 1.0), (9, 1.0)]
    result = compare_sorted(check, iter(source), iter(target), top=1, sample=1)
    assert result.differing_keys == [[1], [2], [9]]


def test_rows_compare_by_id_column_by_column():
    from datetime import UTC, datetime

    from tracking_sync.validate.row_differences import compare_rows

    when = datetime(2025, 3, 10, 12, 0, 0, 123456)
    row = (5, 7, "s1", 2, 1741608000123456, when, None, 3, True, False, "select 1")
    moved = (5, 7, "s1", 2, 1741608001123456, datetime(2025, 3, 10, 12, 0, 1, 123456, tzinfo=UTC), *row[6:])
    found = compare_rows(
        [row, (6, *row[1:]), (8, *row[1:])], [moved, (8, *row[1:]), (8, *row[1:]), (9, *row[1:])]
    )
    assert [(d.id, d.kind, d.column) for d in found] == [
        (5, "changed", "action_time"),
        (6, "missing in target", None),
        (8, "extra in target", None),
        (9, "extra in target", None),
    ]
    assert (found[0].source, found[0].target) == ("2025-03-10 12:00:00.123456", "2025-03-10 12:00:01.123456")
    # the same instant as TIMESTAMP (source) and TIMESTAMPTZ (target) is no difference
    same = (5, 7, "s1", 2, 1741608000123456, when.replace(tzinfo=UTC), *row[6:])
    assert compare_rows([row], [same]) == []
