"""The tasks that move the files: the target's tables, export, upload and manifest, the COPY."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import task

from tracking_sync.oncall.refusals import refusals_fail_at_once
from tracking_sync.operators import ReportingS3ToRedshiftOperator, staged_copy

log = logging.getLogger(__name__)


def _s3_client() -> Any:
    from tracking_sync.connections import s3_client

    return s3_client()


@task
@refusals_fail_at_once
def create_schema(plan: dict, ti=None) -> list[str]:
    """The target schema, its tables and its sync state's tables (if missing). Then, when no
    other run of the DAG is running, every staging table but this run's is a leftover of a
    killed or failed run: dropped (logged and returned). The run's own staging table is
    (re)created by its load (tracking_sync.load.inputs), which can then be cleared alone."""
    from contextlib import closing

    from tracking_sync.connections import redshift_connection
    from tracking_sync.core.names import DAG_ID
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.load.schema import create_target_tables, drop_leftover_staging_tables

    run_plan = RunPlan.from_xcom(plan)
    alone = ti is not None and ti.get_dr_count(dag_id=DAG_ID, states=["running"]) <= 1
    with closing(redshift_connection()) as connection:
        create_target_tables(run_plan, connection)
        if alone:
            return drop_leftover_staging_tables(run_plan, connection)
    log.info("another run of %s is running: leftover staging tables wait for a run that runs alone", DAG_ID)
    return []


@task
@refusals_fail_at_once
def export(table_name: str, plan: dict, partition: dict | None = None, ti=None) -> dict[str, Any]:
    """One partition of the run's slice of one table (mapped over the plan's partitions for
    action) into the scratch area, keyed on the slice, the partition and this attempt. A
    capture run's action: the changes committed since the target's applied LSN, up to the
    plan's, read from the slot (tracking_sync.capture.changes)."""
    from contextlib import closing

    from tracking_sync.connections import redshift_connection, source_connection
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.core.settings import Settings
    from tracking_sync.extract.export import export_for_run
    from tracking_sync.extract.partitions import Partition

    settings = Settings.from_env()
    client = None if settings.scratch.is_local else _s3_client()
    run_plan = RunPlan.from_xcom(plan)
    attempt = getattr(ti, "try_number", None) or 1
    if table_name == "action" and run_plan.applies_changes:
        from tracking_sync.capture.changes import capture_for_run
        from tracking_sync.load.sync_state import read_sync_state

        with closing(redshift_connection()) as target:
            state = read_sync_state(target, run_plan.target_schema)
        with closing(source_connection()) as connection:
            return capture_for_run(
                run_plan,
                settings,
                connection,
                applied_lsn=state.applied_lsn,
                attempt=attempt,
                s3_client=client,
            )
    with closing(source_connection()) as connection:
        return export_for_run(
            table_name,
            run_plan,
            settings,
            connection,
            partition=Partition.from_xcom(partition),
            attempt=attempt,
            s3_client=client,
        )


@task(multiple_outputs=True)
@refusals_fail_at_once
def upload(plan: dict, export_summary: dict, ti=None) -> dict[str, Any]:
    """Put the parts of a table exported whole in S3 with their manifest; then, when no other
    run is running, remove the files of this table's intervals that are past the retention."""
    from tracking_sync.core.settings import Settings
    from tracking_sync.stage.upload import upload_export

    settings, client = Settings.from_env(), _s3_client()
    uploaded = upload_export(client, settings, export_summary, _export_task(ti))
    uploaded["expired_intervals"] = _expire(client, settings, plan, export_summary["table"], ti)
    return uploaded


@task
@refusals_fail_at_once
def upload_partition(plan: dict, export_summary: dict, ti=None) -> dict[str, Any]:
    """Publish one partition's staged parts under the load prefix (mapped: one per export)."""
    from tracking_sync.core.settings import Settings
    from tracking_sync.stage.upload import publish_parts

    return publish_parts(_s3_client(), Settings.from_env(), export_summary, _export_task(ti))


def _export_task(ti: Any) -> str:
    """The export task instance an upload's parts come from: the one to clear when they are gone."""
    task_id = str(getattr(ti, "task_id", "") or "upload")
    index = getattr(ti, "map_index", -1)
    name = task_id.replace("upload", "export", 1)
    return f"{name} (map index {index})" if isinstance(index, int) and index >= 0 else name


@task(multiple_outputs=True)
@refusals_fail_at_once
def write_manifest(table_name: str, plan: dict, uploads: list[dict], ti=None) -> dict[str, Any]:
    """ONE manifest of every partition's parts (what the load's single COPY reads); removes
    what earlier attempts left, and (when no other run is running) the intervals past the
    retention."""
    from tracking_sync.core.settings import Settings
    from tracking_sync.stage.upload import write_manifest as write

    settings, client = Settings.from_env(), _s3_client()
    written = write(client, settings, table_name, list(uploads))
    written["expired_intervals"] = _expire(client, settings, plan, table_name, ti)
    return written


def _expire(client: Any, settings: Any, plan: dict, table_name: str, ti: Any) -> list[str]:
    """The retention sweep, only while this run is the DAG's only one: another run (a backfill
    beside the nightly) may be between its upload and its COPY of files the sweep would take."""
    from tracking_sync.core.names import DAG_ID
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.stage.retention import expire_old_intervals

    if ti is not None and ti.get_dr_count(dag_id=DAG_ID, states=["running", "queued"]) > 1:
        log.info("another run of %s is running: the retention sweep waits for a run that runs alone", DAG_ID)
        return []
    before = RunPlan.from_xcom(plan).window_end
    files = [table_name, "action_changes"] if table_name == "action" else [table_name]
    return [label for name in files for label in expire_old_intervals(client, settings, name, before)]


def load(
    task_id: str, *, plan: Any, schema: Any, table: Any, source_table: str, uploaded: Any, **kwargs: Any
) -> ReportingS3ToRedshiftOperator:
    """The load task: the provider's COPY of one upload into `schema.table`, REPLACE
    (tracking_sync.operators.staged_copy, which the publish also runs again when cleared)."""
    return staged_copy(
        task_id, plan=plan, schema=schema, table=table, source_table=source_table, uploaded=uploaded, **kwargs
    )
