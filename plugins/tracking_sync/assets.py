"""Airflow Assets the DAG publishes: the target tables, updated by a VALIDATED load.

Analytics DAGs schedule on them (`schedule=[ACTION_ASSET]`) and run only after a load whose
parity checks passed: the assets are outlets of the `validate` task alone, and Airflow
emits a task's asset events only when it succeeds, so a run that fails anywhere (validate
included) publishes nothing.

Names, not the provider's `redshift://host:port/database/schema/table` URIs: the cluster's
host and database live in the `redshift_default` connection, which must not be read when
the DAG file is parsed. A name is static: `<connection id>.<schema>.<table>`, for the
default target schema (`tracking`). Each event's extra says what the load did:

    {"dag_id": ..., "run_id": ..., "mode": "incremental", "target_schema": "tracking",
     "data_interval_start": "2025-03-01T00:00:00+00:00", "data_interval_end": "2025-03-02T00:00:00+00:00",
     "validated_up_to": "2025-03-02T00:00:00+00:00", "validation": "scoped",
     "table": "action", "rows_staged": 1234, "rows_inserted": 1234, "rows_carried": 0}

A manual run into another schema (the `target_schema` param) publishes the same assets with
that schema in `target_schema`: a consumer that reads only `tracking` checks it.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset

from tracking_sync.core.names import REDSHIFT_CONN_ID
from tracking_sync.core.params import DEFAULT_TARGET_SCHEMA

ASSET_GROUP = "tracking_sync"


def table_asset(table: str, schema: str = DEFAULT_TARGET_SCHEMA) -> Asset:
    return Asset(name=f"{REDSHIFT_CONN_ID}.{schema}.{table}", group=ASSET_GROUP)


ACTION_ASSET = table_asset("action")
ACTION_TYPE_ASSET = table_asset("action_type")
LOADED_TABLES = (ACTION_ASSET, ACTION_TYPE_ASSET)


def load_event_extras(
    plan: dict[str, Any],
    action_uploaded: dict[str, Any],
    action_type_uploaded: dict[str, Any],
    published: dict[str, Any],
    *,
    dag_id: str,
    run_id: str,
) -> dict[str, dict[str, Any]]:
    """{asset name: extra} of a validated load, from the plan and the upload and publish
    results (plain values: XComs of upload_action, upload_action_type, replace_action_rows)."""
    run = {
        "dag_id": dag_id,
        "run_id": run_id,
        "mode": plan["mode"],
        "target_schema": plan["target_schema"],
        # None for a full refresh: it moved every row, not an interval.
        "data_interval_start": plan["start"],
        "data_interval_end": plan["end"],
        "validated_up_to": plan["window_end"],
        "validation": plan["scope"],
        # How action moved: full, interval, or changes (captured from the source's WAL).
        "action_load": plan.get("action_load", "full" if plan["full_refresh"] else "interval"),
    }
    return {
        ACTION_ASSET.name: run
        | {
            "table": "action",
            "rows_staged": action_uploaded["rows"],
            "rows_inserted": published["inserted"],
            "rows_carried": published.get("carried", 0),
            # A capture run: its changes per kind (inserts, updates, deletes, superseded).
            **({"changes": published["changes"]} if "changes" in published else {}),
        },
        ACTION_TYPE_ASSET.name: run
        | {
            "table": "action_type",
            "rows_staged": action_type_uploaded["rows"],
            "rows_inserted": action_type_uploaded["rows"],  # REPLACE: the table is the file
        },
    }
