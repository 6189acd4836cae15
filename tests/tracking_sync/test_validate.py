"""Validation as query parity on PostgreSQL: the real checks, the report, the scopes.

The tests run the real checks on the local PostgreSQL, with the "target" a copy of the
source in a schema of its own (action_time as TIMESTAMPTZ, as on Redshift). Redshift's
own semantics (the integer EXTRACT trap) are covered in tests/e2e against the stand-in.
Check files are tested in test_parity.py, the comparison in test_compare.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import psycopg2
import pytest

from devstack import demo_data
from devstack.side_by_side import format_side_by_side
from devstack.stack import create_source_schema
from tracking_sync.validate.compare import merge_by_key
from tracking_sync.validate.parity import load_checks
from tracking_sync.validate.run import run_validation
from tracking_sync.validate.streams import CheckWindow, stream_check

DAY = datetime(2025, 3, 10, tzinfo=UTC)
END_OF_DATA = datetime(2026, 1, 2, tzinfo=UTC)


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
    window = CheckWindow("public", "tracking", DAY, DAY + timedelta(days=1), scope)
    source_rows, target_rows = stream_check(check, source, target, window)
    return {
        key[0]: tuple(float(v) for v in source_values)
        for key, source_values, _ in merge_by_key(check, source_rows, target_rows)
    }


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


# ---------------------------------------------------------------- the row drill-down

# four kinds of damage, each to one row of the target (ids picked in the source)
ROW_DAMAGE = {
    "moved": "update tracking.action set action_time = action_time + interval '1 second' where id = {id}",
    "query": "update tracking.action set query = 'select 1 -- changed' where id = {id}",
    "deleted": "delete from tracking.action where id = {id}",
    "extra": (
        "insert into tracking.action select id + 5000000, user_profile_id, session_id, "
        "action_type_id, action_time, course_id, exercise_id, is_exercise_checked, is_async, "
        "query from tracking.action where id = {id}"
    ),
}


def _row_ids(source, count, where="true"):
    with source.cursor() as cursor:
        cursor.execute(f"select id from action where {where} order by id limit {count}")
        ids = [row_id for (row_id,) in cursor.fetchall()]
    source.rollback()
    return ids


def _source_row(source, row_id):
    with source.cursor() as cursor:
        cursor.execute("select action_time, query from action where id = %s", (row_id,))
        row = cursor.fetchone()
    source.rollback()
    return row


def _damage_four_rows(source, target):
    moved, changed, deleted, copied = _row_ids(
        source, 4, "action_time >= '2025-06-01' and query is not null and id % 97 = 0"
    )
    for kind, row_id in zip(ROW_DAMAGE, (moved, changed, deleted, copied), strict=True):
        _change(target, ROW_DAMAGE[kind].format(id=row_id))
    return moved, changed, deleted, copied + 5000000


def _assert_rows_named(source, report, moved, changed, deleted, extra):
    rows = {(row.id, row.kind, row.column): row for row in report.rows.rows}
    time_before, query_before = _source_row(source, moved)
    moved_row = rows[(moved, "changed", "action_time")]
    assert moved_row.source == time_before.isoformat(sep=" ")
    assert moved_row.target == (time_before + timedelta(seconds=1)).isoformat(sep=" ")
    _, query_before = _source_row(source, changed)
    changed_row = rows[(changed, "changed", "query")]
    assert (changed_row.source, changed_row.target) == (query_before[:500], "select 1 -- changed")
    assert rows[(deleted, "missing in target", None)].source["query"] is not None
    assert rows[(extra, "extra in target", None)].target["session_id"]
    assert report.rows.row_ids == sorted([moved, changed, deleted, extra])
    assert report.rows.capped is None and len(report.rows.rows) == 4
    table = report.format_table()
    assert "rows that differ: 4" in table
    for row_id in (moved, changed, deleted, extra):
        assert f"\n{row_id} " in table
    assert "select 1 -- changed" in table
    data = report.to_dict()["rows"]["rows"]
    assert {(row["id"], row["kind"], row["column"]) for row in data} == set(rows)


def test_damaged_rows_are_named_with_their_column_and_both_values(source, target):
    moved, changed, deleted, extra = _damage_four_rows(source, target)
    report = _validate(source, target)
    assert not report.passed
    _assert_rows_named(source, report, moved, changed, deleted, extra)
    assert f"rows: 4 ids differ, e.g. {min(moved, changed, deleted)}" in report.summary()


@pytest.fixture
def strtol(parity_db):
    """Redshift's STRTOL(text, 16) on the test database: the drill-down then renders the
    Redshift form of its checksum on both sides (devstack's stand-in has no STRTOL)."""
    with psycopg.connect(parity_db, autocommit=True) as connection:
        connection.execute(
            "create function public.strtol(value text, base integer) returns bigint "
            "language sql immutable as $$ select case when base = 16 then "
            "cast(cast('x' || lpad(value, 16, '0') as bit(64)) as bigint) end $$"
        )
        try:
            yield
        finally:
            connection.execute("drop function public.strtol(text, integer)")


def test_the_drill_down_in_the_redshift_dialect_finds_the_same_rows(source, target, strtol):
    from tracking_sync.validate.dialect import engine_dialect

    assert engine_dialect(target) == "redshift"
    moved, changed, deleted, extra = _damage_four_rows(source, target)
    _assert_rows_named(source, _validate(source, target), moved, changed, deleted, extra)


def test_scoped_drill_down_finds_an_old_row_of_an_interval_user(source, target):
    user, _ = _change_one(target, _last_action_of_an_old_session("in"))
    report = _validate(source, target, "scoped", DAY, DAY + timedelta(days=1))
    assert [(row.kind, row.column) for row in report.rows.rows] == [("changed", "action_time")]
    assert f"user_profile_id {user}" in report.rows.region


def test_the_drill_down_stops_at_its_row_cap_and_says_so(source, target):
    from tracking_sync.validate.drilldown import drill_down

    _change(
        target,
        "update tracking.action set course_id = coalesce(course_id, 0) + 1 "
        "where action_time >= '2025-03-10' and action_time < '2025-03-11'",
    )
    window = CheckWindow("public", "tracking", END_OF_DATA, END_OF_DATA, "full")
    found = drill_down(source, target, window, days=["2025-03-10"], max_rows=5)
    assert len(found.rows) == 5 and found.capped.startswith("rows")
    assert {row.column for row in found.rows} == {"course_id"}
    assert found.queries <= 8  # a few queries, never the table


# ---------------------------------------------------------------- scope users: a change batch's users


def _listed_users(source, count=3, before=DAY):
    """`count` users with rows before `before` and after it: a history on several days."""
    with source.cursor() as cursor:
        cursor.execute(
            "select user_profile_id from action group by user_profile_id "
            "having min(action_time) < %s and max(action_time) >= %s "
            "order by user_profile_id limit %s",
            (before.replace(tzinfo=None), before.replace(tzinfo=None), count),
        )
        users = [user for (user,) in cursor.fetchall()]
    source.rollback()
    assert len(users) == count
    return users


def _validate_users(source, target, users, **options):
    report = run_validation(
        source,
        target,
        target_schema="tracking",
        window_start=DAY,
        window_end=END_OF_DATA,
        scope="users",
        users=users,
        **options,
    )
    json.dumps(report.to_dict())
    return report


def _move_last_action_of_a_session(target, user):
    """One second later: the last action of the user's first session (its duration + 1 s);
    returns the row's id and its day."""
    return _change_one(
        target,
        f"""
        update tracking.action set action_time = action_time + interval '1 second'
        where id = (
            select id from tracking.action
            where session_id = (
                select session_id from tracking.action where user_profile_id = {int(user)}
                order by action_time, id limit 1)
            order by action_time desc, id limit 1)
        returning id, cast(action_time as date)
        """,
    )


def test_users_scope_compares_the_listed_users_whole_history(source, target):
    users = _listed_users(source)
    report = _validate_users(source, target, users)
    assert report.passed, report.format_table()
    checks = _by_name(report)
    assert checks["per_user_session_totals"].source_rows == 3
    with source.cursor() as cursor:
        cursor.execute(
            "select count(*), count(distinct cast(action_time as date)) from action "
            "where user_profile_id = any(%s)",
            (users,),
        )
        rows, days = cursor.fetchone()
    source.rollback()
    assert checks["action_rows_per_day"].source_rows == days > 3  # every day, not the window's
    assert checks["table_row_counts"].source_rows == 2  # action_of_listed_users, action_type
    full = _source_values_of(source, target, "full")
    assert {user: full[user] for user in users} == _source_values_of(source, target, "users", users)
    assert "users: 3 listed users, whole history" in report.summary() and report.users_in_scope == 3
    counts = next(c for c in load_checks() if c.name == "table_row_counts")
    window = CheckWindow("public", "tracking", DAY, END_OF_DATA, "users", tuple(users))
    source_rows, _ = stream_check(counts, source, target, window)
    assert ("action_of_listed_users", rows) in list(source_rows)


def _source_values_of(source, target, scope, users=None):
    check = next(c for c in load_checks() if c.name == "per_user_session_totals")
    window = CheckWindow(
        "public", "tracking", DAY, END_OF_DATA, scope, None if users is None else tuple(users)
    )
    source_rows, target_rows = stream_check(check, source, target, window)
    return {
        key[0]: tuple(float(v) for v in source_values)
        for key, source_values, _ in merge_by_key(check, source_rows, target_rows)
    }


def test_users_scope_names_the_user_and_the_row_moved_by_a_second(source, target):
    users = _listed_users(source)
    row_id, day = _move_last_action_of_a_session(target, users[1])
    report = _validate_users(source, target, users)
    assert not report.passed
    totals = _by_name(report)["per_user_session_totals"]
    assert totals.differing == 1 and totals.top_differences[0].key == [users[1]]
    assert totals.top_differences[0].delta == pytest.approx(1.0, abs=1e-3)
    assert report.days_to_backfill == [day.isoformat()]
    # the drill-down: the row, in the region of the listed users
    assert [(row.id, row.kind, row.column) for row in report.rows.rows] == [
        (row_id, "changed", "action_time")
    ]
    assert f"user_profile_id {users[1]}" in report.rows.region and "3 listed users" in report.rows.region
    assert report.diagnosis[0].startswith("the listed users differ")
    assert report.diagnosis[0].endswith(f"per_user_session_totals user_profile_id {users[1]}")
    assert f"action_rows_per_day day {day.isoformat()}" in report.diagnosis[0]
    repair = "\n".join(report.repair)
    assert repair.startswith("Reload the days on which the listed users' rows differ")
    assert f"--from-date {day.isoformat()} --to-date {day.isoformat()}" in repair
    assert "mode" in repair and "full_refresh" in repair  # the other way out
    table = report.format_table()
    assert "scope users: 3 listed users, whole history" in table and f"\n{row_id} " in table


def test_users_scope_ignores_users_not_listed(source, target):
    listed, other = _listed_users(source, 2), _listed_users(source, 3)[2]
    _move_last_action_of_a_session(target, other)
    _change(
        target,
        f"delete from tracking.action where id = (select max(id) from tracking.action "
        f"where user_profile_id = {other})",
    )
    assert _validate_users(source, target, listed).passed
    failed = _validate_users(source, target, [*listed, other])
    assert not failed.passed
    assert {row.id for row in failed.rows.rows} and failed.rows.capped is None


def test_an_empty_user_list_compares_no_user(source, target):
    (user,) = _listed_users(source, 1)
    _move_last_action_of_a_session(target, user)
    report = _validate_users(source, target, [])
    assert report.passed, report.format_table()
    checks = _by_name(report)
    assert checks["per_user_session_totals"].source_rows == 0
    assert checks["action_rows_per_day"].source_rows == 0
    assert checks["table_row_counts"].matching == 2  # no row of nobody, and action_type


class _Recorded:
    """A real connection whose cursors record the SQL they execute (to count the scans)."""

    def __init__(self, connection, statements):
        self._connection, self._statements = connection, statements

    def cursor(self):
        statements, cursor = self._statements, self._connection.cursor()

        class Cursor:
            def execute(self, sql, *args):
                statements.append(sql)
                return cursor.execute(sql, *args)

            def __getattr__(self, name):
                return getattr(cursor, name)

        return Cursor()

    def __getattr__(self, name):
        return getattr(self._connection, name)


def test_users_scope_reads_action_once_per_engine_for_the_same_rows(source, target):
    """The target has no index on user_profile_id: each pass over the listed users' rows is
    a scan of the whole table. Scope "users" computes the per-user and the per-day base in
    one (action_users_and_days), split into the same rows each base gives alone."""
    import re

    from tracking_sync.validate.parity import render_base
    from tracking_sync.validate.shared_pass import base_table, shared_passes

    users = _listed_users(source, 5)
    window = CheckWindow("public", "tracking", DAY, END_OF_DATA, "users", tuple(users))
    statements: list[str] = []
    with shared_passes(load_checks(), source, _Recorded(target, statements), window) as bases:
        together = {}
        with target.cursor() as cursor:
            for name in bases:
                cursor.execute(f"select * from {base_table(name)}")
                together[name] = sorted(cursor.fetchall(), key=repr)
    assert sorted(together) == ["action_days", "action_user_totals"]
    assert len([sql for sql in statements if re.search(r"from tracking\.action\b", sql)]) == 1
    with target.cursor() as cursor:
        cursor.execute("set timezone to 'UTC'")
        for name, rows in together.items():
            bounds = {"window_start": DAY, "window_end": END_OF_DATA, "zoned_bounds": True}
            cursor.execute(render_base(name, schema="tracking", scope="users", users=users, **bounds))
            assert rows == sorted(cursor.fetchall(), key=repr) and rows, name
    target.rollback()


def test_a_long_user_list_is_computed_and_drilled_in_chunks(source, target):
    users = _listed_users(source, 7)
    one_statement = _validate_users(source, target, users)
    chunked = _validate_users(source, target, users, users_per_statement=2)
    assert chunked.passed and [(c.name, c.source_rows, c.matching) for c in chunked.checks] == [
        (c.name, c.source_rows, c.matching) for c in one_statement.checks
    ]
    row_id, _ = _move_last_action_of_a_session(target, users[5])  # in the third chunk
    report = _validate_users(source, target, users, users_per_statement=2)
    assert _by_name(report)["per_user_session_totals"].top_differences[0].key == [users[5]]
    assert report.rows.row_ids == [row_id]
    # a day named, so the region is the listed users' rows that day: 4 chunks, 4 narrowings
    assert report.rows.queries >= 4


def test_changed_rows_are_compared_by_id_in_chunks(source, target):
    from tracking_sync.validate.placed_rows import CHANGED_ROWS_CHECK, compare_rows_by_id

    ids = _row_ids(source, 10, "action_time >= '2025-06-01'")
    changed, deleted = ids[4], ids[8]
    _change(target, f"update tracking.action set course_id = coalesce(course_id, 0) + 1 where id = {changed}")
    _change(target, f"delete from tracking.action where id = {deleted}")
    nowhere = 900_000_000  # deleted in the source and gone from the target: as it should be
    result = compare_rows_by_id(
        source, target, "tracking", [*ids, nowhere], name=CHANGED_ROWS_CHECK, ids_per_query=3
    )
    assert result.name == "rows_changed_by_the_batch" and not result.passed
    assert (result.source_rows, result.target_rows, result.matching) == (10, 9, 8)
    assert result.differing == 1 and [(d.key, d.column) for d in result.top_differences] == [
        ([changed], "course_id")
    ]
    assert result.missing_in_target == 1 and result.missing_in_target_sample == [[deleted]]
    assert len(result.days) >= 1 and result.note is None
    capped = compare_rows_by_id(source, target, "tracking", ids, max_ids=4, ids_per_query=3)
    assert capped.name == "rows_placed_outside_interval" and capped.passed
    assert capped.source_rows == 4 and capped.note.startswith("10 ids, the lowest 4 compared")


def test_the_rows_compared_by_id_are_read_from_action_once_right_after_the_targets_pass(source, target):
    """The target has no index on id: reading a batch's rows by id is a scan of `action`.
    run_validation stages them in the target's thread as soon as its shared pass is done
    (while the source's may still run), in one scan per 10,000 ids, and the comparison then
    reads them from the staged table; differences are found as before, and the table goes."""
    import re

    from tracking_sync.validate.placed_rows import CHANGED_ROWS_CHECK, STAGED_TABLE, RowsById

    users = _listed_users(source, 3)
    ids = _row_ids(source, 6, "action_time >= '2025-06-01'")
    changed, deleted = ids[1], ids[4]
    _change(target, f"update tracking.action set is_async = not is_async where id = {changed}")
    _change(target, f"delete from tracking.action where id = {deleted}")
    statements: list[str] = []
    report = _validate_users(
        source,
        _Recorded(target, statements),
        users,
        by_id=[RowsById(CHANGED_ROWS_CHECK, [*ids, 900_000_000], 200_000)],
        drill=False,  # the drill-down would read action again, for the failed check's rows
    )
    by_id = _by_name(report)["rows_changed_by_the_batch"]
    assert (by_id.source_rows, by_id.target_rows, by_id.matching, by_id.differing) == (6, 5, 4, 1)
    assert [(d.key, d.column) for d in by_id.top_differences] == [([changed], "is_async")]
    assert by_id.missing_in_target_sample == [[deleted]] and not report.passed
    scans = [i for i, sql in enumerate(statements) if re.search(r"from tracking\.action\b", sql)]
    assert len(scans) == 2, statements  # the users' shared pass, then the staging of the ids
    pass_at, staged_at = scans
    assert "where id in (" in statements[staged_at] and STAGED_TABLE in statements[staged_at]
    first_check = next(  # a check reading a pass's table (not the pass splitting its own)
        i for i, sql in enumerate(statements) if "from parity_" in sql and "create temp table" not in sql
    )
    assert pass_at < staged_at < first_check
    reads = [sql for sql in statements if "where id in (" in sql and "query_is_marker" in sql]
    assert reads and all(f"from {STAGED_TABLE}" in sql for sql in reads)
    assert "target's rows by id" in report.pass_seconds
    with target.cursor() as cursor:
        cursor.execute("select count(*) from pg_tables where tablename = %s", (STAGED_TABLE,))
        assert cursor.fetchone() == (0,)
    target.rollback()


def test_staged_rows_by_id_come_in_chunks_into_one_table(source, target):
    from tracking_sync.validate.placed_rows import STAGED_TABLE, RowsById, StagedRows

    ids = _row_ids(source, 7)
    staged = StagedRows.of(
        "tracking", [RowsById("a", ids[:5]), RowsById("b", ids[3:], max_ids=3)], ids_per_query=2
    )
    assert staged.ids == ids[:6]  # b compares its lowest 3: ids[6] is not staged
    staged.stage(target)
    with target.cursor() as cursor:
        cursor.execute(f"select id from {STAGED_TABLE} order by id")
        assert [row_id for (row_id,) in cursor.fetchall()] == ids[:6]
    target.rollback()
    staged.drop(target)
    nothing = StagedRows.of("tracking", [RowsById("a", [])])
    nothing.stage(target)  # no id: an empty table, read as no row
    with target.cursor() as cursor:
        cursor.execute(f"select count(*) from {STAGED_TABLE}")
        assert cursor.fetchone() == (0,)
    target.rollback()
    nothing.drop(target)


def test_validate_for_run_of_a_change_batch(source, target):
    from tracking_sync.core.plan import plan_run
    from tracking_sync.validate.run import validate_for_run

    users = _listed_users(source, 3)
    row_id, day = _move_last_action_of_a_session(target, users[0])
    other_ids = _row_ids(source, 2, f"user_profile_id = {users[2]}")
    plan = plan_run({}, DAY, DAY + timedelta(days=1))  # a nightly run: scope scoped otherwise
    report = validate_for_run(
        plan, source, target, run_id="t", touched_users=users, touched_ids=[row_id, *other_ids]
    )
    assert report.scope == "users" and report.users_in_scope == 3
    by_id = _by_name(report)["rows_changed_by_the_batch"]
    assert (by_id.differing, by_id.matching) == (1, 2)
    assert by_id.top_differences[0].key == [row_id] and by_id.top_differences[0].column == "action_time"
    assert day.isoformat() in report.days_to_backfill
    assert f"rows_changed_by_the_batch id {row_id}" in report.diagnosis[0]
    # no user touched: nothing to compare per user, the ids still are
    none = validate_for_run(plan, source, target, run_id="t", touched_users=[], touched_ids=[row_id])
    assert none.scope == "users" and not none.passed and none.rows is None
    assert _by_name(none)["per_user_session_totals"].source_rows == 0
    # validation=full covers every user already: scope full, the ids still by id
    full_plan = plan_run({"validation": "full"}, DAY, DAY + timedelta(days=1))
    full = validate_for_run(full_plan, source, target, run_id="t", touched_users=users, touched_ids=[row_id])
    assert full.scope == "full" and not _by_name(full)["rows_changed_by_the_batch"].passed
    # not a capture run: as before, the placed rows under their own name, nothing by batch
    nightly = validate_for_run(plan, source, target, run_id="t", placed_outside_ids=[row_id])
    assert nightly.scope == "scoped" and "rows_changed_by_the_batch" not in _by_name(nightly)
    assert not _by_name(nightly)["rows_placed_outside_interval"].passed
