"""Benchmark of the validate stage: full and one-day checks against `select count(*)`.

    .venv/bin/python bench/bench_validation.py              # 10 million rows
    .venv/bin/python bench/bench_validation.py --rows 1000000

Starts its own local PostgreSQL (devstack), generates N demo rows in the source
database and copies them into a target database (schema `tracking`, action_time
TIMESTAMPTZ, as the DAG creates it on Redshift). The target is loaded and queried
directly on PostgreSQL, not through the Redshift stand-in: the stand-in executes every
query on PostgreSQL anyway, so the figures are PostgreSQL's on both sides (a real
Redshift cluster runs the same checks columnar and in parallel across slices).

The source gets its indexes from include/sql/postgres/create_tables.sql, among them
(user_profile_id, action_time) include (session_id) for the scoped validation. The
target's backing PostgreSQL gets the same index here, and one on action_time: they
stand in for what Redshift does without indexes (distkey user_profile_id: each slice
joins its own users; sortkey action_time: zone maps skip the blocks outside the
interval). Redshift's DDL has no index; only this benchmark adds them.

Reported, medians of --repeat runs, in one process run:
  * `select count(*) from action` on each side (the floor: one scan of the table)
  * the reference per-user query (per-user session totals as people run it, alone) on
    each side: the goal is a full validation within 1.5x of the slower one
  * the full validation (every parity check over all rows), both sides in parallel
  * a scoped validation of one day (what a nightly run does): the users active that
    day with their whole history before its end, and that day's counts
  * how many users and rows that day's scope covers, and the source's plan of the
    scoped per-user check (EXPLAIN: a semi-join of the day's users to their history)
  * each side alone (the source's): a full validation and a one-day one, whose ratio
    has a goal of at most 10 %
  * peak RSS of the validating process (a child process, so set-up does not count)
and the two goal ratios, met or not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

FULL_END = datetime(2026, 1, 2, tzinfo=UTC)  # after the demo data's year (2025)
DAY = datetime(2025, 7, 1, tzinfo=UTC)

# The reference analytics query, per-user session totals as people run it on either
# engine (what per_user_session_totals.sql computed alone before the checks shared a
# pass): the goal is a full validation, every check on both engines, within 1.5x of it.
REFERENCE_PER_USER = """
with actions as (
    select user_profile_id, session_id, action_time
    from {schema}.action
    where action_time < timestamp '2026-01-02'
),

user_sessions as (
    select
        user_profile_id,
        session_id,
        extract(epoch from max(action_time))
            - extract(epoch from min(action_time)) as session_duration
    from actions
    group by user_profile_id, session_id
)

select
    user_profile_id,
    sum(session_duration) as total_time_spent,
    avg(session_duration) as session_avg_duration
from user_sessions
group by user_profile_id
order by user_profile_id
"""
GOAL_FULL_VS_PER_USER = 1.5
GOAL_DAY_VS_FULL_SOURCE = 0.10

SCOPE_SIZE = """
with interval_users as (
    select distinct user_profile_id from action
    where action_time >= timestamp '2025-07-01' and action_time < timestamp '2025-07-02'
)
select
    (select count(*) from interval_users) as users,
    (select count(distinct user_profile_id) from action) as all_users,
    count(*) as history_rows
from action
where action_time < timestamp '2025-07-02'
  and user_profile_id in (select user_profile_id from interval_users)
"""


def time_one_engine(conn, schema: str, window, checks=None) -> float:
    """Seconds one engine takes to answer every check (shared passes, then each check's
    rows read and dropped): one side of a validation, the source's as reported here."""
    from tracking_sync.validate.parity import load_checks
    from tracking_sync.validate.shared_pass import base_table, drop, materialize
    from tracking_sync.validate.streams import stream_rows

    checks = load_checks() if checks is None else list(checks)
    names = sorted({check.base for check in checks if check.base})
    bounds = {
        "window_start": window.window_start,
        "window_end": window.window_end,
        "scope": window.scope,
    }
    started = time.perf_counter()
    materialize(conn, names, schema, window)
    try:
        for check in checks:
            sql = check.render(
                schema=schema, base_relation=base_table(check.base) if check.base else None, **bounds
            )
            for _ in stream_rows(conn, sql):
                pass
    finally:
        drop(conn, names)
    return time.perf_counter() - started


def _copy_table(source_dsn: str, target_dsn: str, select: str, table: str) -> None:
    """COPY source -> target through a pipe: nothing held in memory."""
    import psycopg2

    read_fd, write_fd = os.pipe()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            with psycopg2.connect(source_dsn) as conn, conn.cursor() as cur, os.fdopen(write_fd, "wb") as out:
                cur.copy_expert(f"copy ({select}) to stdout", out)
        except BaseException as error:  # surfaced below, after the consumer stops
            errors.append(error)

    producer = threading.Thread(target=produce)
    producer.start()
    with psycopg2.connect(target_dsn) as conn, conn.cursor() as cur, os.fdopen(read_fd, "rb") as src:
        cur.copy_expert(f"copy {table} from stdin", src)
    producer.join()
    if errors:
        raise errors[0]


def prepare(rows: int) -> tuple[object, str, str]:
    from devstack import demo_data
    from devstack.postgres import LocalPostgres
    from devstack.stack import create_source_schema

    postgres = LocalPostgres().start()
    source_dsn = postgres.create_database("tracking")
    target_dsn = postgres.create_database("dev")
    create_source_schema(source_dsn)
    started = time.perf_counter()
    demo_data.generate(source_dsn, rows=rows)
    print(f"generated {rows:,} source rows in {time.perf_counter() - started:.1f} s", flush=True)
    postgres.execute(
        """
        create schema tracking;
        create table tracking.action_type (
            id integer, code varchar(400), name varchar(400), is_async boolean);
        create table tracking.action (
            id integer, user_profile_id integer, session_id varchar(400),
            action_type_id integer, action_time timestamptz, course_id integer,
            exercise_id integer, is_exercise_checked boolean, is_async boolean,
            query varchar(65535));
        """,
        dbname="dev",
    )
    started = time.perf_counter()
    _copy_table(source_dsn, target_dsn, "select * from action_type", "tracking.action_type")
    _copy_table(
        source_dsn,
        target_dsn,
        "select id, user_profile_id, session_id, action_type_id, "
        "action_time at time zone 'UTC', course_id, exercise_id, is_exercise_checked, "
        "is_async, query from action",
        "tracking.action",
    )
    # Redshift's sort key (zone maps on action_time) and distribution by user_profile_id
    # are indexes' jobs here: the same indexes as the source (create_tables.sql).
    postgres.execute(
        "create index on tracking.action (action_time);"
        "create index on tracking.action (user_profile_id, action_time) include (session_id);",
        dbname="dev",
    )
    # A freshly loaded table has no visibility map yet: index-only scans would visit the
    # heap until autovacuum runs. Vacuum both sides, as a table in service is.
    postgres.execute("vacuum analyze action", dbname="tracking")
    postgres.execute("vacuum analyze tracking.action", dbname="dev")
    print(f"copied to the target in {time.perf_counter() - started:.1f} s", flush=True)
    return postgres, source_dsn, target_dsn


def measure(source_dsn: str, target_dsn: str, repeat: int) -> dict:
    """Runs in a child process so its peak RSS is the validation's alone."""
    import psycopg
    import psycopg2

    from tracking_sync.validate.run import run_validation

    source = psycopg.connect(source_dsn)  # what PostgresHook returns (psycopg 3: streams)
    target = psycopg2.connect(target_dsn)  # DECLARE/FETCH, the path redshift_connector takes

    def timed(fn) -> float:
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - started)
        return statistics.median(runs)

    def count(conn, table):
        with conn.cursor() as cur:
            cur.execute(f"select count(*) from {table}")
            cur.fetchone()
        conn.rollback()

    def per_user(conn, schema):
        with conn.cursor() as cur:
            cur.execute("set timezone to 'UTC'")
            cur.execute(REFERENCE_PER_USER.format(schema=schema))
            cur.fetchall()
        conn.rollback()

    def source_side(scope, start, end):
        from tracking_sync.validate.streams import CheckWindow

        time_one_engine(source, "public", CheckWindow("public", "tracking", start, end, scope))

    def scoped_plan(conn, schema):
        from tracking_sync.validate.parity import load_checks

        check = next(c for c in load_checks() if c.name == "per_user_session_totals")
        sql = check.render(
            schema=schema, window_start=DAY, window_end=DAY + timedelta(days=1), scope="scoped"
        )
        with conn.cursor() as cur:
            cur.execute("set timezone to 'UTC'")
            cur.execute(f"explain (costs off) {sql}")
            plan = [line for (line,) in cur.fetchall()]
        conn.rollback()
        nodes = [line for line in plan if any(word in line for word in ("Loop", "Join", "Scan", "Unique"))]
        indent = min(len(line) - len(line.lstrip()) for line in nodes)
        return [line[indent:] for line in nodes]

    def validate(scope, start, end):
        report = run_validation(
            source, target, target_schema="tracking", window_start=start, window_end=end, scope=scope
        )
        assert report.passed, report.format_table()
        return report

    figures = {
        "count_source_s": timed(lambda: count(source, "action")),
        "count_target_s": timed(lambda: count(target, "tracking.action")),
        "per_user_source_s": timed(lambda: per_user(source, "public")),
        "per_user_target_s": timed(lambda: per_user(target, "tracking")),
        "full_s": timed(lambda: validate("full", FULL_END, FULL_END)),
        "day_s": timed(lambda: validate("scoped", DAY, DAY + timedelta(days=1))),
        "full_source_side_s": timed(lambda: source_side("full", FULL_END, FULL_END)),
        "day_source_side_s": timed(lambda: source_side("scoped", DAY, DAY + timedelta(days=1))),
    }
    with source.cursor() as cur:
        cur.execute(SCOPE_SIZE)
        figures["day_users"], figures["all_users"], figures["day_history_rows"] = cur.fetchone()
    source.rollback()
    figures["day_plan_source"] = scoped_plan(source, "public")
    figures["day_plan_target"] = scoped_plan(target, "tracking")
    full = validate("full", FULL_END, FULL_END)
    figures["full_checks"] = {c.name: [c.source_rows, c.seconds] for c in full.checks}
    day = validate("scoped", DAY, DAY + timedelta(days=1))
    figures["day_checks"] = {c.name: [c.source_rows, c.seconds] for c in day.checks}
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--measure", nargs=2, metavar=("SOURCE_DSN", "TARGET_DSN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure, repeat=args.repeat)))
        return
    postgres, source_dsn, target_dsn = prepare(args.rows)
    try:
        child = subprocess.run(
            [sys.executable, __file__, "--repeat", str(args.repeat), "--measure", source_dsn, target_dsn],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        postgres.stop()
    count_floor = max(figures["count_source_s"], figures["count_target_s"])
    print(f"\nvalidation benchmark, {args.rows:,} action rows, median of {args.repeat}")
    print(
        f"  select count(*) from action   source {figures['count_source_s']:.2f} s"
        f"   target {figures['count_target_s']:.2f} s"
    )
    per_user = max(figures["per_user_source_s"], figures["per_user_target_s"])
    print(
        f"  reference per-user query      source {figures['per_user_source_s']:.2f} s"
        f"   target {figures['per_user_target_s']:.2f} s"
    )
    print(
        f"  full validation (all checks)  {figures['full_s']:.2f} s"
        f"   = {figures['full_s'] / count_floor:.1f} x the slower count(*)"
    )
    for name, (rows, seconds) in figures["full_checks"].items():
        print(f"      {name:<26} {rows:>8,} keys  {seconds:.2f} s")
    print(
        f"  one-day scoped validation     {figures['day_s']:.3f} s"
        f"   = {figures['day_s'] / count_floor:.2f} x the slower count(*)"
    )
    print(
        f"      scope: {figures['day_users']:,} of {figures['all_users']:,} users active that day,"
        f" {figures['day_history_rows']:,} rows of history"
        f" ({figures['day_history_rows'] / args.rows:.1%} of the table)"
    )
    for name, (rows, seconds) in figures["day_checks"].items():
        print(f"      {name:<26} {rows:>8,} keys  {seconds:.3f} s")
    for side in ("source", "target"):
        print(f"  plan of the scoped per-user check, {side}:")
        for line in figures[f"day_plan_{side}"]:
            print(f"    {line}")
    print(
        f"  source side alone             full {figures['full_source_side_s']:.2f} s"
        f"   one day {figures['day_source_side_s']:.3f} s"
    )
    print(f"  peak RSS of the validating process: {figures['peak_rss_mb']:.0f} MB")
    full_ratio = figures["full_s"] / per_user
    day_ratio = figures["day_source_side_s"] / figures["full_source_side_s"]
    print("\n  goal                                             ratio   goal   met")
    print(
        f"  full validation / slower engine's per-user query  {full_ratio:5.2f}"
        f"  <= {GOAL_FULL_VS_PER_USER:.2f}  {'yes' if full_ratio <= GOAL_FULL_VS_PER_USER else 'NO'}"
    )
    print(
        f"  one-day scoped / full, source side                {day_ratio:5.2f}"
        f"  <= {GOAL_DAY_VS_FULL_SOURCE:.2f}  {'yes' if day_ratio <= GOAL_DAY_VS_FULL_SOURCE else 'NO'}"
    )


if __name__ == "__main__":
    main()
