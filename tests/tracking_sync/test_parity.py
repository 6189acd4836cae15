"""Parity check files: their headers, and how they are rendered for each engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tracking_sync.core.errors import ParityCheckError
from tracking_sync.validate import parity
from tracking_sync.validate.parity import load_checks, parse_check, timestamp_literal

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


def test_checks_share_one_pass_and_render_alone_with_it_inlined():
    checks = {check.name: check for check in load_checks()}
    assert {checks[name].base for name in checks} == {"action_user_totals", "action_days"}
    window = {"window_start": DAY, "window_end": DAY + timedelta(days=1), "scope": "full"}
    shared = checks["per_user_session_totals"].render(
        schema="tracking", base_relation="parity_action_user_totals", **window
    )
    assert "from parity_action_user_totals" in shared and "tracking.action" not in shared
    alone = checks["per_user_session_totals"].render(schema="tracking", **window)
    assert "from (" in alone and ") as action_user_totals" in alone and "from tracking.action" in alone
    with pytest.raises(ParityCheckError, match="not a plain identifier"):
        checks["table_row_counts"].render(schema="tracking", base_relation="x; drop table action", **window)


def test_a_base_that_is_not_a_file_is_refused(tmp_path):
    path = tmp_path / "c.sql"
    path.write_text("-- key: k\n-- base: nowhere\n-- value: n tolerance 0 -- exact\nselect 1 as k, 1 as n\n")
    with pytest.raises(ParityCheckError, match="base 'nowhere' must name a file"):
        parse_check(path)


@pytest.mark.parametrize(
    "dialect, hex_to_number",
    [("redshift", "strtol(substr(md5("), ("postgresql", "as bit(32)) as bigint)")],
)
def test_the_drill_down_checksum_is_rendered_per_engine(dialect, hex_to_number):
    from tracking_sync.validate.drilldown import render_drilldown

    sql = render_drilldown(
        "action_buckets.sql",
        schema="tracking",
        dialect=dialect,
        ranges=[(0, 1024), (4096, 5120)],
        bucket_size=32,
        window_start=timestamp_literal(DAY),
        window_end=timestamp_literal(DAY + timedelta(days=1)),
        scope="full",
        users=[7, 9],
        days=[(timestamp_literal(DAY), timestamp_literal(DAY + timedelta(days=1)))],
    )
    assert hex_to_number in sql
    assert "user_profile_id in (7, 9)" in sql
    assert "or (action_time >= timestamp '2025-03-10 00:00:00.000000'" in sql
    assert "(id >= 0 and id < 1024)" in sql and "or (id >= 4096 and id < 5120)" in sql
    assert "id / 32 as bucket" in sql
    # a row's text is the same on both engines: time as integer microseconds, NULL as '~'
    assert "cast(round(date_part('epoch', action_time) * 1000000) as bigint)" in sql
    assert "coalesce(md5(query), '~')" in sql


# ---------------------------------------------------------------- scope users


def _users_sql(check_name, users, base_relation=None):
    check = parse_check(parity.PARITY_SQL_DIR / f"{check_name}.sql")
    sql = check.render(
        schema="tracking",
        window_start=DAY,
        window_end=DAY + timedelta(days=1),
        scope="users",
        users=users,
        base_relation=base_relation,
    )
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))  # the SQL only


# PostgreSQL-only ways to pass a list that Redshift refuses or lacks
NOT_ON_REDSHIFT = ("any(", "array", "unnest", "values", "::")


@pytest.mark.parametrize("name", ["per_user_session_totals", "action_rows_per_day", "table_row_counts"])
def test_the_users_scope_renders_the_list_as_checked_integers(name):
    sql = _users_sql(name, [42, 7, "9", 7])
    # the listed users' whole history: no lower bound, no interval's users
    assert "user_profile_id in (7, 9, 42)" in sql
    assert "action_time < timestamp '2025-03-11 00:00:00.000000'" in sql
    assert "action_time >= " not in sql and "interval_users" not in sql
    assert not any(word in sql.lower() for word in NOT_ON_REDSHIFT)
    if name == "table_row_counts":
        assert "'action_of_listed_users' as table_name" in sql


def test_an_empty_user_list_renders_valid_sql_that_matches_no_row():
    assert "user_profile_id in (null)" in _users_sql("per_user_session_totals", [])
    assert parity.user_list([]) == "null"


def test_the_users_scope_refuses_what_is_not_an_integer_and_a_missing_list():
    for bad in ["1) or (1=1", True, 1.5, None, "1e3", 2**63]:
        with pytest.raises(ParityCheckError, match="is not an integer"):
            _users_sql("per_user_session_totals", [1, bad])
    with pytest.raises(ParityCheckError, match="needs the list of users"):
        _users_sql("per_user_session_totals", None)
    with pytest.raises(ParityCheckError, match="take none"):
        parse_check(parity.PARITY_SQL_DIR / "per_user_session_totals.sql").render(
            schema="tracking", window_start=DAY, window_end=DAY, scope="scoped", users=[1]
        )


def test_a_statement_holds_at_most_users_per_statement_users_far_below_16_mb():
    # the widest INTEGER ids: the list stays near 1.3 MB, Redshift's limit is 16 MB
    widest = [-(2**31) + i for i in range(parity.USERS_PER_STATEMENT)]
    assert len(_users_sql("per_user_session_totals", widest).encode()) < 2 * 1024 * 1024
    with pytest.raises(ParityCheckError, match="in chunks"):
        _users_sql("per_user_session_totals", range(parity.USERS_PER_STATEMENT + 1))
    # a check over the shared pass's temp table does not render the list: no limit there
    over_the_pass = _users_sql(
        "per_user_session_totals", range(parity.USERS_PER_STATEMENT + 1), "parity_action_user_totals"
    )
    assert "from parity_action_user_totals" in over_the_pass and "in (" not in over_the_pass


def test_the_shared_pass_takes_a_long_list_in_chunks():
    from tracking_sync.validate.shared_pass import user_chunks
    from tracking_sync.validate.streams import CheckWindow

    def window(users):
        return CheckWindow("public", "tracking", DAY, DAY, "users" if users is not None else "full", users)

    assert user_chunks(window((1, 2, 3, 4, 5)), 2) == [(1, 2), (3, 4), (5,)]
    assert user_chunks(window(()), 2) == [()]  # one statement, `in (null)`: an empty table
    assert user_chunks(window(None)) == [None]


@pytest.mark.parametrize("dialect", ["redshift", "postgresql"])
def test_the_drill_down_stays_within_the_listed_users(dialect):
    from tracking_sync.validate.drilldown import render_drilldown

    sql = render_drilldown(
        "action_rows.sql",
        schema="tracking",
        dialect=dialect,
        ranges=[(0, 32)],
        window_start=timestamp_literal(DAY),
        window_end=timestamp_literal(DAY + timedelta(days=1)),
        scope="users",
        users=[7],
        days=[(timestamp_literal(DAY), timestamp_literal(DAY + timedelta(days=1)))],
        scope_users=parity.user_list([7, 9, 11]),
    )
    assert "and user_profile_id in (7, 9, 11)\n      and (\n          user_profile_id in (7)" in sql
    assert "or (action_time >= timestamp '2025-03-10 00:00:00.000000'" in sql
    assert not any(word in sql.lower() for word in ("any(", "array", "unnest"))


def test_rows_by_id_on_redshift_are_an_inline_list_of_integers():
    from tracking_sync.core.sql import render_sql

    sql = render_sql("redshift/select_actions_by_id.sql", relation="tracking.action", ids=[3, 5, 8])
    assert "where id in (3, 5, 8)" in sql and "any(" not in sql


class _RedshiftLike:
    """A DB-API connection that refuses PostgreSQL's settings as Redshift does, and keeps
    what it was sent."""

    def __init__(self):
        self.sent: list[str] = []

    def cursor(self):
        return self

    def execute(self, sql, *args):
        self.sent.append(sql)
        if sql.startswith("show work_mem"):
            raise RuntimeError('unrecognized configuration parameter "work_mem"')

    def fetchall(self):
        return []

    def close(self):
        pass

    commit = rollback = close


def test_the_shared_pass_sends_no_planner_setting_to_an_engine_that_refuses_them():
    from tracking_sync.validate.shared_pass import drop, materialize, takes_planner_settings
    from tracking_sync.validate.streams import CheckWindow

    engine = _RedshiftLike()
    assert not takes_planner_settings(engine)
    materialize(
        engine, ["action_user_totals"], "tracking", CheckWindow("public", "tracking", DAY, DAY, "full")
    )
    drop(engine, ["action_user_totals"])
    settings = [
        sql
        for sql in engine.sent
        if sql.startswith(("set ", "reset ", "show ")) and sql.split()[1] != "timezone"
    ]
    assert settings and set(settings) == {"show work_mem"}  # asked, never set nor reset
    assert any(sql.startswith("create temp table parity_action_user_totals") for sql in engine.sent)


def test_the_targets_shared_pass_compares_action_time_with_timestamptz_bounds():
    """The target's action_time is TIMESTAMPTZ: a TIMESTAMP bound would make PostgreSQL
    convert every row's value to compare it; the source's column is TIMESTAMP."""
    from tracking_sync.validate.parity import render_base
    from tracking_sync.validate.shared_pass import TARGET_TIME_IS_ZONED

    assert TARGET_TIME_IS_ZONED
    assert timestamp_literal(DAY, zoned=True) == "cast('2025-03-10 00:00:00.000000+00' as timestamptz)"
    bounds = {"window_start": DAY, "window_end": DAY + timedelta(days=1), "scope": "scoped"}
    target = render_base("action_user_totals", schema="tracking", zoned_bounds=True, **bounds)
    source = render_base("action_user_totals", schema="public", **bounds)
    assert "timestamp '" not in target and target.count("as timestamptz)") == source.count("timestamp '") > 0
