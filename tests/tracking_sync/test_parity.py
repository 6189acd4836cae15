"""Parity check files: their headers, and how they are rendered for each engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tracking_sync import parity
from tracking_sync.exceptions import ParityCheckError
from tracking_sync.parity import load_checks, parse_check, timestamp_literal

DAY = datetime(2025, 3, 10, tzinfo=UTC)


def test_every_shipped_check_declares_keys_and_justified_tolerances():
    checks = {check.name: check for check in load_checks()}
    assert {"per_user_session_totals", "table_row_counts", "action_rows_per_day"} <= set(checks)
    totals = checks["per_user_session_totals"]
    assert totals.keys == ("user_profile_id",)
    assert [(v.name, v.tolerance) for v in totals.values] == [
        ("total_time_spent", 0.001),
        ("session_avg_duration", 0.001),
    ]
    assert all(len(v.why) > 20 for check in checks.values() for v in check.values)
    assert checks["action_rows_per_day"].day_key == "day"


def test_render_scopes_the_window_and_binds_only_checked_values():
    check = parse_check(parity.PARITY_SQL_DIR / "per_user_session_totals.sql")
    window = {"window_start": DAY, "window_end": DAY + timedelta(days=1)}
    scoped = check.render(schema="tracking", scope="scoped", **window)
    full = check.render(schema="tracking", scope="full", **window)
    assert "from tracking.action" in scoped
    assert "action_time < timestamp '2025-03-11 00:00:00.000000'" in scoped
    assert "action_time >= timestamp '2025-03-10 00:00:00.000000'" in scoped
    # scoped: the interval's users, with their whole history (no lower bound on it)
    assert "user_profile_id in (select user_profile_id from interval_users)" in scoped
    assert "action_time >= " not in full and "interval_users" not in full
    # an aware bound is turned to UTC; text is never accepted as a bound
    assert timestamp_literal(datetime(2025, 3, 10, 2, tzinfo=UTC).astimezone()) == (
        "timestamp '2025-03-10 02:00:00.000000'"
    )
    with pytest.raises(ParityCheckError, match="not a datetime"):
        timestamp_literal("2025-03-10'; drop table action; --")  # type: ignore[arg-type]
    with pytest.raises(ParityCheckError, match="not a plain identifier"):
        check.render(schema='tracking"; drop', scope="full", **window)
    with pytest.raises(ParityCheckError, match="scope"):
        check.render(schema="tracking", scope="everything", **window)


def test_a_check_without_keys_or_justification_is_refused_with_the_fix(tmp_path):
    no_key = tmp_path / "no_key.sql"
    no_key.write_text("-- value: n tolerance 0 -- exact\nselect 1 as n\n")
    with pytest.raises(ParityCheckError, match="needs a '-- key"):
        parse_check(no_key)
    unjustified = tmp_path / "unjustified.sql"
    unjustified.write_text("-- key: k\n-- value: n tolerance 0\nselect 1 as k, 1 as n\n")
    with pytest.raises(ParityCheckError, match="needs a justification"):
        parse_check(unjustified)


def test_a_params_line_documents_the_template_and_is_not_a_field(tmp_path):
    path = tmp_path / "documented.sql"
    path.write_text(
        "-- What it checks.\n-- key: k\n-- params: schema, scope\n--   scoped: the interval's keys.\n"
        "-- value: n tolerance 0 -- exact\nselect 1 as k, 1 as n\n"
    )
    check = parse_check(path)
    assert check.keys == ("k",) and [v.name for v in check.values] == ["n"]
