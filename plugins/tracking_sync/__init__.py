"""tracking_sync: move the tracking tables from the source PostgreSQL to Redshift through S3.

One subpackage per stage, in the order data flows, over a small core; the Airflow-facing
layer on top. Imports run one way: a module imports only the core and stages upstream of it.

    core/       names, tables (the column lists), settings (the one reader), params, plan
                (what one run moves and checks: the input of every task), errors, sql
                (include/sql rendering), layout (keys), s3, scratch (the scratch area where
                the export leaves parts for the upload)
    extract/    partitions (id ranges of a full refresh), parts (zstd CSV part writer),
                export (source rows -> parts in the scratch area)
    capture/    changes to action from a logical replication slot: pgoutput (the protocol
                decoder, + pgoutput_records), slot (slot and publication), batch (the
                transactions committed in [applied LSN, upto LSN) -> CSV change rows), rows,
                preflight (is the source set up), changes (a run's batch into parts), pending
                (changes not yet applied)
    stage/      upload (parts -> the run's load prefix in S3, one COPY manifest), retention
    load/       schema (target DDL, the run's Redshift staging table), copy (COPY options,
                rejected rows), publish (the one-transaction publish), moved_rows, swap,
                apply_changes (a capture batch, exactly once), sync_state (what the target holds)
    validate/   run (parity on both engines) over parity, shared_pass, streams, compare,
                placed_rows, drilldown (+ row_differences), report (+ text, pending_note),
                diagnosis, dialect, pending
    oncall/     failures (what retries), notifications, deadlines (the late-run alert)
    planning    how action moves this run: bootstrap, full, changes or interval, from the
                target's sync state and the source's slot
    tasks/      the DAG's tasks (plan, move, publish), over connections, operators, assets:
                the Airflow-facing layer the DAG wires together

Every stage function runs without Airflow (plain values and open connections in, plain
values out); the DAG's tasks (tracking_sync.tasks) are thin wrappers around them.
"""

from __future__ import annotations

import importlib
from typing import Any

# The public entry points, imported on first use: `import tracking_sync` stays cheap.
_PUBLIC = {
    "Settings": "tracking_sync.core.settings",
    "RunPlan": "tracking_sync.core.plan",
    "RunSlice": "tracking_sync.core.plan",
    "plan_run": "tracking_sync.core.plan",
    "export_table": "tracking_sync.extract.export",
    "publish_parts": "tracking_sync.stage.upload",
    "write_manifest": "tracking_sync.stage.upload",
    "publish_action": "tracking_sync.load.publish",
    "run_validation": "tracking_sync.validate.run",
    "ValidationReport": "tracking_sync.validate.report",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'tracking_sync' has no attribute {name!r}")
