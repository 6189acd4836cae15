"""Validation as query parity: check files, the sorted-stream comparison, the report.

The comparison tests run the real checks on the local PostgreSQL, with the "target" a
copy of the source in a schema of its own (action_time as TIMESTAMPTZ, as on Redshift).
Redshift's own semantics (the integer EXTRACT trap) are covered in tests/e2e against
the stand-in.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import psycopg
import psycopg2
import pytest

from devstack import demo_data
from devstack.stack import create_source_schema
from tracking_sync import parity
from tracking_sync.exceptions import ParityCheckError
from tracking_sync.parity import load_checks, parse_check, timestamp_literal
from tracking_sync.validate import (
    compare_sorted,
    format_side_by_side,
    repair_steps,
    run_check,
    run_validation,
)

DAY = datetime(2025, 3, 10, tzinfo=UTC)
END_OF_DATA = datetime(2026, 1, 2, tzinfo=UTC)


# ---------------------------------------------------------------- check files


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


# ---------------------------------------------------------------- comparison


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


# ---------------------------------------------------------------- on PostgreSQL


@pytest.fixture(scope="module")
def parity_db(stack):
    """A database with the demo data in `public` (the source) and a copy in `tracking`."""
    name = "parity_test"
    stack.postgres.create_database(name)
    dsn = stack.postgres.dsn(name)
    create_source_schema(dsn)
    # 500 users: ~9 sessions each over the year, so a day's users have a history
    demo_data.generate(dsn, rows=30_000, seed=5, users=500)
    return dsn


@pytest.fixture
def target(parity_db):
    """A fresh, correct copy of the source in schema `tracking` (action_time TIMESTAMPTZ);
    a psycopg2 connection, so the DECLARE/FETCH path runs as it does on Redshift."""
    connection = psycopg2.connect(parity_db)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            set timezone to 'UTC';
            drop schema if exists tracking cascade;
            create schema tracking;
            create table tracking.action_type as select * from public.action_type;
            create table tracking.action (like public.action);
            alter table tracking.action alter column action_time type timestamptz;
            insert into tracking.action select * from public.action;
            """
        )
    connection.commit()
    try:
        yield connection
    finally:
        connection.rollback()
        connection.close()


@pytest.fixture
def source(parity_db):
    """The source through psycopg 3, as PostgresHook gives it (the streaming path)."""
    with psycopg.connect(parity_db) as connection:
        yield connection


def _change(target, sql):
    with target.cursor() as cursor:
        cursor.execute(sql)
        assert cursor.rowcount >= 1
    target.commit()


def _validate(source, target, scope="full", start=DAY, end=END_OF_DATA):
    report = run_validation(
        source, target, target_schema="tracking", window_start=start, window_end=end, scope=scope
    )
    json.dumps(report.to_dict())  # XCom-ready whatever the outcome
    return report


def _users(source):
    with source.cursor() as cursor:
        cursor.execute("select count(distinct user_profile_id) from action")
        (users,) = cursor.fetchone()
    source.rollback()
    return users


def _by_name(report):
    return {check.name: check for check in report.checks}


def test_a_correct_copy_passes_full_and_scoped(source, target):
    full = _validate(source, target)
    assert full.passed, full.format_table()
    assert _by_name(full)["per_user_session_totals"].source_rows == _users(source)
    scoped = _validate(source, target, "scoped", DAY, DAY + timedelta(days=1))
    assert scoped.passed, scoped.format_table()
    # scoped sees the interval's users (a few of all) and the interval's day
    checks = _by_name(scoped)
    assert 0 < checks["per_user_session_totals"].source_rows < _users(source) / 10
    assert checks["action_rows_per_day"].source_rows == 1
    assert "PASSED" in scoped.format_table() and scoped.repair == []


def test_one_action_time_moved_by_a_second_names_the_user_and_the_day(source, target):
    # the last action of a session on DAY: it moves the session's duration by one second
    _change(
        target,
        """
        update tracking.action set action_time = action_time + interval '1 second'
        where id = (
            select id from tracking.action
            where action_time >= '2025-03-10' and action_time < '2025-03-10 12:00'
            order by action_time desc, id limit 1)
          and action_time = (
            select max(action_time) from tracking.action a2
            where a2.session_id = tracking.action.session_id)
        """,
    )
    report = _validate(source, target)
    assert not report.passed
    totals = _by_name(report)["per_user_session_totals"]
    assert totals.differing == 1 and totals.missing_in_target == totals.missing_in_source == 0
    worst = totals.top_differences[0]
    assert worst.column == "total_time_spent" and worst.delta == pytest.approx(1.0, abs=1e-3)
    assert report.days_to_backfill == ["2025-03-10"]
    assert _by_name(report)["table_row_counts"].passed
    assert "--from-date 2025-03-10 --to-date 2025-03-10" in "\n".join(report.repair)


def test_a_middle_action_moved_by_a_second_is_caught_by_the_day_checksum(source, target):
    _change(
        target,
        """
        update tracking.action set action_time = action_time + interval '1 second'
        where id = (
            select a.id from tracking.action a
            where a.action_time >= '2025-03-10' and a.action_time < '2025-03-10 12:00'
              and a.action_time > (select min(action_time) from tracking.action b
                                   where b.session_id = a.session_id)
              and a.action_time + interval '1 second' < (
                  select max(action_time) from tracking.action b
                  where b.session_id = a.session_id)
            order by a.id limit 1)
        """,
    )
    report = _validate(source, target)
    checks = _by_name(report)
    assert checks["per_user_session_totals"].passed  # session durations did not move
    assert not checks["action_rows_per_day"].passed
    assert report.days_to_backfill == ["2025-03-10"]


def test_deleted_and_extra_rows_fail_the_counts_and_name_their_days(source, target):
    _change(
        target,
        "delete from tracking.action where id = (select min(id) from tracking.action "
        "where action_time >= '2025-03-10' and action_time < '2025-03-11')",
    )
    _change(
        target,
        "insert into tracking.action select id + 10000000, user_profile_id, "
        "session_id, action_type_id, action_time + interval '1 day', course_id, "
        "exercise_id, is_exercise_checked, is_async, query from tracking.action "
        "where action_time >= '2025-05-01' order by id limit 1",
    )
    report = _validate(source, target)
    counts = _by_name(report)["table_row_counts"]
    assert counts.passed  # one row fewer, one more: the table total hides it, the days do not
    per_day = _by_name(report)["action_rows_per_day"]
    assert per_day.differing == 2
    assert len(report.days_to_backfill) == 2 and "2025-03-10" in report.days_to_backfill
    table = report.format_table()
    assert "action_rows_per_day: largest differences" in table


def test_a_deleted_row_alone_fails_the_table_count(source, target):
    _change(target, "delete from tracking.action where id = (select max(id) from tracking.action)")
    counts = _by_name(_validate(source, target))["table_row_counts"]
    assert counts.differing == 1
    assert counts.top_differences[0].key == ["action"] and counts.top_differences[0].delta == -1


def test_a_user_missing_from_the_target_is_listed(source, target):
    _change(
        target,
        "delete from tracking.action where user_profile_id = "
        "(select min(user_profile_id) from tracking.action)",
    )
    report = _validate(source, target)
    totals = _by_name(report)["per_user_session_totals"]
    assert totals.missing_in_target == 1 and totals.missing_in_source == 0
    assert "missing in target" in report.summary()
    assert "1 user_profile_id missing in target, e.g." in report.format_table()


# ---------------------------------------------------------------- scoped: the interval's users


def _interval_users(source, start=DAY, end=DAY + timedelta(days=1)):
    with source.cursor() as cursor:
        cursor.execute(
            "select distinct user_profile_id from action where action_time >= %s and action_time < %s",
            (start.replace(tzinfo=None), end.replace(tzinfo=None)),
        )
        users = {user for (user,) in cursor.fetchall()}
    source.rollback()
    assert users
    return users


def _source_values(source, target, scope):
    """{user: (total_time_spent, session_avg_duration)} of the source, for DAY's window."""
    check = next(c for c in load_checks() if c.name == "per_user_session_totals")
    values = {}

    def keep(key, source_values, target_values):
        values[key[0]] = tuple(float(v) for v in source_values)

    run_check(
        check,
        source,
        target,
        source_schema="public",
        target_schema="tracking",
        window_start=DAY,
        window_end=DAY + timedelta(days=1),
        scope=scope,
        on_pair=keep,
    )
    return values


def _last_action_of_an_old_session(user_in: str) -> str:
    """An update moving, by one second, the last action of a session that ended before DAY,
    of a user `user_in` the interval's users ("in" or "not in"): the session grows by 1 s."""
    return f"""
        update tracking.action set action_time = action_time + interval '1 second'
        where id = (
            select a.id
            from tracking.action a
            join (select session_id, max(action_time) as last_time
                  from tracking.action group by session_id) s
              on s.session_id = a.session_id and s.last_time = a.action_time
            where a.action_time < '2025-03-09'
              and a.user_profile_id {user_in} (
                  select user_profile_id from tracking.action
                  where action_time >= '2025-03-10' and action_time < '2025-03-11')
            order by a.id limit 1)
        returning user_profile_id, cast(action_time as date)
        """


def _change_one(target, sql):
    with target.cursor() as cursor:
        cursor.execute(sql)
        (row,) = cursor.fetchall()
    target.commit()
    return row


def test_scoped_totals_are_the_interval_users_real_totals(source, target):
    """Scoped = the interval's users with their whole history: the same numbers the full
    check gives those users (a session across midnight counts whole)."""
    scoped = _source_values(source, target, "scoped")
    full = _source_values(source, target, "full")
    assert set(scoped) == _interval_users(source)
    assert scoped == {user: full[user] for user in scoped}
    # and there is history to count: most of these users were active before the interval
    with source.cursor() as cursor:
        cursor.execute(
            "select count(distinct user_profile_id) from action where action_time < %s "
            "and user_profile_id = any(%s)",
            (DAY.replace(tzinfo=None), list(scoped)),
        )
        (with_history,) = cursor.fetchone()
    source.rollback()
    assert with_history >= len(scoped) / 2


def test_scoped_catches_an_old_row_of_an_interval_user(source, target):
    user, day = _change_one(target, _last_action_of_an_old_session("in"))
    assert user in _interval_users(source)
    scoped = _validate(source, target, "scoped", DAY, DAY + timedelta(days=1))
    totals = _by_name(scoped)["per_user_session_totals"]
    assert totals.differing == 1 and totals.top_differences[0].key == [user]
    assert totals.top_differences[0].delta == pytest.approx(1.0, abs=1e-3)
    # the interval's day is right; the old day is found by a full validation, which the
    # report says how to run
    assert scoped.days_to_backfill == []
    assert any('"validation": "full"' in step for step in scoped.repair)
    full = _validate(source, target, "full")
    assert full.days_to_backfill == [day.isoformat()]


def test_scoped_counts_an_old_duplicate_of_an_interval_user(source, target):
    """A duplicated old row leaves every session's first and last action, so the totals,
    as they were: the scoped row count over the interval users' history catches it."""
    _change(
        target,
        """
        insert into tracking.action
        select * from tracking.action
        where id = (
            select min(id) from tracking.action
            where action_time < '2025-03-09'
              and user_profile_id in (
                  select user_profile_id from tracking.action
                  where action_time >= '2025-03-10' and action_time < '2025-03-11'))
        """,
    )
    checks = _by_name(_validate(source, target, "scoped", DAY, DAY + timedelta(days=1)))
    assert checks["per_user_session_totals"].passed
    counts = checks["table_row_counts"]
    assert counts.differing == 1
    assert counts.top_differences[0].key == ["action_of_interval_users"]
    assert counts.top_differences[0].delta == 1


def test_an_old_row_of_a_user_not_in_the_interval_is_for_full_validation(source, target):
    user, day = _change_one(target, _last_action_of_an_old_session("not in"))
    assert user not in _interval_users(source)
    assert _validate(source, target, "scoped", DAY, DAY + timedelta(days=1)).passed
    full = _validate(source, target, "full")
    totals = _by_name(full)["per_user_session_totals"]
    assert totals.differing == 1 and totals.top_differences[0].key == [user]
    assert full.days_to_backfill == [day.isoformat()]


def test_side_by_side_reference_table(source, target):
    text = format_side_by_side(source, target, target_schema="tracking", window_end=END_OF_DATA)
    lines = text.splitlines()
    assert lines[0].startswith("PostgreSQL (source)") and "Redshift (target)" in lines[0]
    assert lines[1].count("user_profile_id | total_time_spent | session_avg_duration") == 2
    users = _users(source)
    assert f"({users} rows)" in text
    assert len([line for line in lines if line[:1].isdigit()]) == 10
    assert f"verdict: the engines agree on all {users} users" in text


def test_print_a_failure_report(source, target, capsys):
    """The whole report, as on-call sees it (`pytest -s` prints it)."""
    _change(
        target,
        "delete from tracking.action where user_profile_id = "
        "(select min(user_profile_id) from tracking.action)",
    )
    _change(
        target,
        "update tracking.action set action_time = action_time + interval '1 second' "
        "where id in (select id from tracking.action where action_time >= '2025-04-02'"
        " order by action_time limit 3)",
    )
    report = _validate(source, target)
    print(report.format_table())
    print(report.summary())
    summary = report.summary()
    assert summary.startswith("parity FAILED (full): action_rows_per_day: ")
    assert "per_user_session_totals: 1 user_profile_id differ, 1 missing in target" in summary
    assert "repair:" in report.format_table()


def test_a_run_without_data_interval_is_validated_up_to_when_it_was_triggered():
    from types import SimpleNamespace

    from tracking_sync.validate import validation_window

    triggered = datetime(2026, 1, 5, 7, 30, tzinfo=UTC)
    assert validation_window({"dag_run": SimpleNamespace(run_after=triggered)}) == (triggered, triggered)
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    context = {
        "data_interval_start": start,
        "data_interval_end": end,
        "dag_run": SimpleNamespace(run_after=triggered),
    }
    assert validation_window(context) == (start, end)
