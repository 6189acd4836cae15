"""A downstream DAG as an analytics team writes it: scheduled on the validated `action` load.

Its one task appends what it was triggered by (each asset event's asset and extra) as JSON
lines to the file named in ONCALL_TEST_CONSUMER_OUT.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from tracking_sync.assets import ACTION_ASSET


@dag(
    schedule=[ACTION_ASSET],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["test"],
    default_args={"owner": "analytics", "retries": 0},
)
def analytics_on_tracking():
    @task
    def record_trigger(triggering_asset_events=None) -> None:
        import json
        import os

        with open(os.environ["ONCALL_TEST_CONSUMER_OUT"], "a") as sink:
            for asset, events in triggering_asset_events.items():
                for event in events:
                    name = getattr(event.asset, "name", None) or getattr(asset, "name", str(asset))
                    sink.write(json.dumps({"asset": name, "extra": event.extra}) + "\n")

    record_trigger()


analytics_on_tracking()
