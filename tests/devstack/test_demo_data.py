"""The demo data generator: deterministic, realistic where the migration can go wrong."""

from __future__ import annotations

import psycopg2
import pytest

from devstack import demo_data
from devstack.stack import create_source_schema


@pytest.fixture(scope="module")
def scratch_source(stack):
    """A database of its own, so the generator can truncate freely."""
    name = "demo_data_test"
    stack.postgres.create_database(name)
    create_source_schema(stack.postgres.dsn(name))
    return stack.postgres.dsn(name)


def _fingerprint(dsn):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "select count(*), md5(string_agg(concat_ws('|', id, user_profile_id, session_id, "
            "action_type_id, action_time, course_id, exercise_id, is_exercise_checked, is_async, "
            "coalesce(query, '<null>')), ',' order by id)) from action"
        )
        return cur.fetchone()


def test_generator_is_deterministic_and_exact(scratch_source):
    assert demo_data.generate(scratch_source, rows=5_000, seed=7) == 5_000
    first = _fingerprint(scratch_source)
    demo_data.generate(scratch_source, rows=5_000, seed=7)
    assert _fingerprint(scratch_source) == first
    demo_data.generate(scratch_source, rows=5_000, seed=8)
    assert _fingerprint(scratch_source) != first


def test_default_shape_users_sessions_and_tricky_queries(scratch_source):
    demo_data.generate(scratch_source, rows=200_000)
    with psycopg2.connect(scratch_source) as conn, conn.cursor() as cur:
        cur.execute(
            "select count(distinct user_profile_id), min(user_profile_id), max(user_profile_id),"
            " min(action_time), max(action_time),"
            " count(*) filter (where query is null), count(*) filter (where query = ''),"
            " count(*) filter (where query like '%,%' and query like '%''%'),"
            " count(*) filter (where query like E'%\\n%'),"
            " count(*) filter (where octet_length(query) > length(query)),"
            " max(octet_length(query)),"
            " count(*) filter (where extract(microseconds from action_time)::int % 1000000 <> 0),"
            " count(*) filter (where course_id is null), count(*) filter (where is_exercise_checked is null)"
            " from action"
        )
        (
            users,
            lo,
            hi,
            first,
            last,
            null_q,
            empty_q,
            quoted,
            newline,
            multibyte,
            longest,
            fractional,
            null_course,
            null_checked,
        ) = cur.fetchone()
        assert users == demo_data.USERS
        assert demo_data.FIRST_USER_ID <= lo and hi <= demo_data.LAST_USER_ID
        assert 300 <= (last - first).days <= 370
        assert null_q > 100_000 and empty_q > 0 and quoted > 0 and newline > 0 and multibyte > 0
        assert longest > 20_000
        assert fractional > 190_000  # sub-second timestamps
        assert null_course > 0 and null_checked > 0
        cur.execute(
            "with s as (select user_profile_id, session_id,"
            " extract(epoch from max(action_time) - min(action_time)) as secs"
            " from action group by 1, 2)"
            " select percentile_cont(0.05) within group (order by a), percentile_cont(0.95) within group (order by a)"
            " from (select avg(secs) / 60 as a from s group by user_profile_id) per_user"
        )
        p5, p95 = cur.fetchone()
        assert 1 < p5 < 10 and 20 < p95 < 45, (p5, p95)
