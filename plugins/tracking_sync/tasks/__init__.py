"""The DAG's tasks: thin Airflow wrappers around the stage functions, one per stage.

Each task takes the run plan (plan_run's XCom "plan") and what its upstream stage returned,
opens its connections through tracking_sync.connections, calls one stage function
and returns plain values. Heavy imports stay inside the tasks: nothing here does I/O
or imports a driver when the DAG file is parsed.

    plan      plan_run (with the id ranges of action's export)
    move      create_schema, export, upload, upload_partition, write_manifest,
              load (the provider's COPY)
    publish   replace_action_rows, advance_capture_slot, validate
"""

from tracking_sync.tasks.move import (
    create_schema,
    export,
    load,
    upload,
    upload_partition,
    write_manifest,
)
from tracking_sync.tasks.plan import plan_run
from tracking_sync.tasks.publish import advance_capture_slot, replace_action_rows, validate

__all__ = [
    "advance_capture_slot",
    "create_schema",
    "export",
    "load",
    "plan_run",
    "replace_action_rows",
    "upload",
    "upload_partition",
    "validate",
    "write_manifest",
]
