"""Healthcheck of an Airflow component without Airflow: is this container's job heartbeating?

    python3 docker/job_heartbeat_check.py TriggererJob

The same question `airflow jobs check --job-type TriggererJob --hostname $HOSTNAME` answers (the
official compose file's check), asked of the metadata DB directly: that command imports Airflow,
seconds of CPU every interval per component, and on a busy 2-core machine it timed out while the
component was fine.
"""

from __future__ import annotations

import os
import socket
import sys

import psycopg2

# Airflow's default hostname_callable is socket.getfqdn.
SQL = """
select 1 from job
where job_type = %s and state = 'running' and hostname = %s
  and latest_heartbeat > now() - make_interval(secs => %s)
"""


def main(job_type: str, max_age_seconds: float = 60) -> int:
    dsn = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace(
        "postgresql+psycopg2://", "postgresql://", 1
    )
    conn = psycopg2.connect(dsn, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute(SQL, (job_type, socket.getfqdn(), max_age_seconds))
            alive = cur.fetchone() is not None
    finally:
        conn.close()
    if not alive:
        print(f"no running {job_type} of {socket.getfqdn()} heartbeated in the last {max_age_seconds:.0f}s")
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
