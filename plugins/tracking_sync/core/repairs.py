"""The repair commands that failure reports print: made here and nowhere else, each runnable as
printed (tests/faults/test_repair_commands.py runs every kind against a real deployment).
"""

from __future__ import annotations

import json
import shlex

from tracking_sync.core.names import DAG_ID
from tracking_sync.core.params import DEFAULT_TARGET_SCHEMA


def conf_word(conf: dict) -> str:
    """A run's conf as JSON, quoted as one shell word."""
    return shlex.quote(json.dumps(conf))


def schema_conf(target_schema: str) -> dict:
    """The conf that keeps a repair in the failed run's schema (none for the default one)."""
    return {} if target_schema == DEFAULT_TARGET_SCHEMA else {"target_schema": target_schema}


def full_refresh_command(target_schema: str = DEFAULT_TARGET_SCHEMA, dag_id: str = DAG_ID) -> str:
    """Reload everything into the schema (a new slot too, with logical capture)."""
    return f"airflow dags trigger {dag_id} --conf {conf_word({'mode': 'full_refresh', **schema_conf(target_schema)})}"


def backfill_command(first: str, last: str, conf: dict | None = None, dag_id: str = DAG_ID) -> str:
    """Rerun the days [first, last] (YYYY-MM-DD), one at a time in order, runs that exist included."""
    command = (
        f"airflow backfill create --dag-id {dag_id} --from-date {first} --to-date {last} "
        "--reprocess-behavior completed --max-active-runs 1"
    )
    return f"{command} --dag-run-conf {conf_word(conf)}" if conf else command
