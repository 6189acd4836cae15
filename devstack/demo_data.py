"""Deterministic demo data for the source database, generated inside PostgreSQL.

A learner logs in, opens courses and exercises, runs SQL (kept in `query`) and
logs out; sessions last from a few minutes to about half an hour depending on
the user. One seeded statement, no row-by-row inserts: 10 million rows take
about a minute here.

    python -m devstack.demo_data --dsn postgresql://... --rows 300000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT_ROWS = 300_000
DEFAULT_SEED = 42
USERS = 23_629
FIRST_USER_ID = 1000
LAST_USER_ID = 24_734
PERIOD_START = "2025-01-01"
PERIOD_DAYS = 365

GENERATE_SQL = Path(__file__).with_name("sql") / "generate_actions.sql"


def generate(
    dsn: str,
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    users: int = USERS,
    period_start: str = PERIOD_START,
    period_days: int = PERIOD_DAYS,
) -> int:
    """Replace the rows of `action` with `rows` generated rows; return the row count."""
    import psycopg2

    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if not 1 <= users <= LAST_USER_ID - FIRST_USER_ID + 1:
        raise ValueError(f"users must be between 1 and {LAST_USER_ID - FIRST_USER_ID + 1}")
    params = {
        "rows": rows,
        "seed": seed,
        "users": users,
        "first_user_id": FIRST_USER_ID,
        "last_user_id": LAST_USER_ID,
        "period_start": period_start,
        "period_days": period_days,
    }
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("truncate action")
            cur.execute(GENERATE_SQL.read_text(), params)
            cur.execute("select count(*) from action")
            (count,) = cur.fetchone()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("analyze action")
    finally:
        conn.close()
    return count


def change_loaded_days(dsn: str) -> list[str]:
    """What a live tracking database does to days already loaded, in four transactions: a late
    action of a new user in June, a user erased (a privacy request: every row deleted), a
    learner's query edited, an action moved to the day before. Returns one line per change."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    said = []
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select max(id), max(user_profile_id) from action")
            max_id, max_user = cur.fetchone()
            cur.execute(
                "insert into action (id, user_profile_id, session_id, action_type_id, action_time, "
                "is_async, query) values (%s, %s, 'late-session', 2, '2025-06-01 12:00', false, 'select 1')",
                (max_id + 1, max_user + 1),
            )
            said.append(f"late action {max_id + 1} of a new user {max_user + 1} on 2025-06-01")
        with conn, conn.cursor() as cur:
            cur.execute("select user_profile_id, count(*) from action group by 1 order by 2 desc, 1 limit 1")
            user, rows = cur.fetchone()
            cur.execute("delete from action where user_profile_id = %s", (user,))
            said.append(f"user {user} erased: {rows} actions deleted, on every day")
        with conn, conn.cursor() as cur:
            cur.execute(
                "update action set query = 'select * from students -- edited' "
                "where id = (select min(id) from action where query is not null) returning id"
            )
            said.append(f"query of action {cur.fetchone()[0]} edited")
        with conn, conn.cursor() as cur:
            cur.execute(
                "update action set action_time = action_time - interval '1 day' "
                "where id = (select max(id) from action where action_time < '2025-03-01') returning id"
            )
            said.append(f"action {cur.fetchone()[0]} moved to the day before")
    finally:
        conn.close()
    return said


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", required=True, help="source database, e.g. $SOURCE_DSN from .devstack/env")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    started = time.perf_counter()
    count = generate(args.dsn, rows=args.rows, seed=args.seed)
    print(f"generated {count:,} action rows in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
