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
