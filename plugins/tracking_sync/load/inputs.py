"""What a COPY needs, made sure of before it runs: a load can be cleared on its own.

An on-call engineer fixes the cause and clears the failed task with its downstream. The
tasks that made a load's inputs (create_schema, the upload) are then not cleared, and what
they made may be gone: the publish drops (or swaps in) the staging table, the retention
sweep removes old intervals from S3. So the load makes sure of it itself, from the run plan
and the upload's XCom (the run's staging table is made here only: no task makes it before):

- the target schema and its tables, if missing (idempotent DDL);
- the run's staging table (or table of changes), (re)created, empty: a REPLACE into it
  empties it anyway;
- the manifest, written again from the part URIs the upload reported when it is missing;
- every part: one that is gone cannot be made here (only the export makes parts), so the
  load fails at once, naming the export task to clear instead (StagedFilesExpired).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tracking_sync.core.errors import StagedFilesExpired
from tracking_sync.core.plan import RunPlan
from tracking_sync.core.s3 import s3_uri, split_s3_uri

log = logging.getLogger(__name__)


def ensure_target_tables(connection: Any, plan: RunPlan, table: str) -> list[str]:
    """The schema and tables (if missing) and, when `table` is the plan's staging table, that
    table created again, empty. Returns what was (re)created, for the log."""
    from tracking_sync.load.schema import create_staging_table, create_target_tables

    create_target_tables(plan, connection)
    if table == plan.staging_table:
        create_staging_table(plan, connection)
        return [f"{plan.target_schema}.{table} (created, empty)"]
    return []


def ensure_staged_files(
    s3_client: Any, bucket: str, manifest_key: str, part_uris: list[str], *, export_task: str, run_id: str
) -> list[str]:
    """The manifest (written again from `part_uris` when missing) and every part, present under
    the manifest's prefix. Returns what was written again; a missing part raises
    StagedFilesExpired naming `export_task`."""
    from tracking_sync.stage.upload import manifest_document

    prefix = manifest_key.rsplit("/", 1)[0] + "/"
    present = set()
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        present.update(item["Key"] for item in page.get("Contents", []))
    missing = [
        uri for uri in part_uris if split_s3_uri(uri)[1] not in present or split_s3_uri(uri)[0] != bucket
    ]
    if missing:
        raise StagedFilesExpired(
            f"{len(missing)} of {len(part_uris)} parts this load needs are gone from "
            f"s3://{bucket}/{prefix} (first: {missing[0]}; removed by the retention sweep, "
            "TRACKING_SYNC_RETENTION_DAYS, or a lifecycle rule), and only the export makes parts: "
            f"clear {export_task} of run {run_id} with its downstream (UI: Clear, Downstream "
            "ticked): it exports them again, and upload, manifest, load and publish follow"
        )
    if manifest_key in present:
        return []
    s3_client.put_object(
        Bucket=bucket,
        Key=manifest_key,
        Body=json.dumps(manifest_document(part_uris), indent=1).encode(),
        ContentType="application/json",
    )
    return [f"{s3_uri(bucket, manifest_key)} (written again from the upload's {len(part_uris)} parts)"]
