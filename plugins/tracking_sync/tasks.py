"""The DAG's tasks: thin Airflow wrappers around the stage functions, one per stage.

Each task takes the run plan (plan_run's XCom) and what its upstream stage returned,
opens its connections through tracking_sync.connections, calls one stage function
and returns plain values. Heavy imports stay inside the tasks: nothing here does I/O
or imports a driver when the DAG file is parsed.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import task

from tracking_sync.assets import LOADED_TABLES
from tracking_sync.core.names import AWS_CONN_ID, REDSHIFT_CONN_ID
from tracking_sync.load.copy import COPY_OPTIONS
from tracking_sync.operators import ReportingS3ToRedshiftOperator

log = logging.getLogger(__name__)


@task(multiple_outputs=True)
def plan_run(
    params=None, dag_run=None, data_interval_start=None, data_interval_end=None, ti=None
) -> dict[str, Any]:
    """Check the params, the conf keys, the interval and the settings, and probe the scratch
    area (a tiny write and delete); then decide how action moves this run from the target's
    sync state and the source's slot (tracking_sync.planning: a bootstrap, a full refresh,
    the captured changes, or the interval). Bad params or settings, and a source that cannot
    capture, fail here, before any data moves, at once (tracking_sync.oncall.failures)."""
    from contextlib import closing

    from tracking_sync.connections import redshift_connection, source_connection
    from tracking_sync.core.plan import plan_run as make_plan
    from tracking_sync.core.settings import Settings
    from tracking_sync.oncall.notifications import notify
    from tracking_sync.planning import plan_against_state

    settings = Settings.from_env()
    plan = make_plan(
        params,
        data_interval_start,
        data_interval_end,
        conf=getattr(dag_run, "conf", None),
        run_after=getattr(dag_run, "run_after", None),
        default_partitions=settings.partitions,
    )
    run_id = getattr(dag_run, "run_id", "run")
    area = settings.scratch
    area.probe(None if area.is_local else _s3_client(), f"{plan.slice_label}-{run_id}")
    with closing(source_connection()) as source, closing(redshift_connection()) as target:
        plan, slot = plan_against_state(
            plan,
            settings,
            source=source,
            target=target,
            run_type=str(getattr(dag_run, "run_type", "") or ""),
            run_id=run_id,
            run_is_active=lambda other: _run_is_active(ti, other),
        )
    log.info(
        "this run: action %s (capture %s%s)",
        plan.action_load,
        plan.capture,
        ", bootstrap" if plan.bootstrap else "",
    )
    if slot is not None:
        log.info("%s", slot.line())
        if slot.retained_bytes is not None and slot.retained_bytes > settings.slot_max_retained_bytes:
            notify(
                f"TRACKING_SYNC SLOT {slot.line()}: over TRACKING_SYNC_SLOT_MAX_RETAINED_MB "
                f"({settings.slot_max_retained_bytes // (1024 * 1024)} MiB). A paused DAG or failing "
                "runs keep the source's WAL; max_slot_wal_keep_size bounds it (docs/runbook.md)"
            )
    return plan.to_xcom()


def _run_is_active(ti: Any, run_id: str) -> bool:
    """Whether another run of the DAG is still queued or running (a run that no longer exists
    is not); when Airflow cannot say, it is taken as active, so this run waits."""
    from tracking_sync.core.names import DAG_ID

    if ti is None:
        return True
    try:
        state = ti.get_dagrun_state(dag_id=DAG_ID, run_id=run_id)
    except Exception as error:  # noqa: BLE001 - asked of the API server; unknown is "active"
        return "not found" not in str(error).lower() and "404" not in str(error)
    return str(getattr(state, "value", state)).lower() in ("queued", "running")


@task
def partition_action(plan: dict) -> list[dict[str, Any]]:
    """The id ranges the run's action export is cut into (what export_action is mapped over):
    one, the whole slice, unless the plan is a partitioned full refresh; then N of about
    equal rows from the source's statistics, without reading the table."""
    from contextlib import closing

    from tracking_sync.core.plan import RunPlan
    from tracking_sync.core.tables import ACTION
    from tracking_sync.extract.partitions import WHOLE, plan_partitions

    run_plan = RunPlan.from_xcom(plan)
    if run_plan.partitions <= 1 or run_plan.applies_changes:
        return [WHOLE.to_xcom()]
    from tracking_sync.connections import source_connection

    with closing(source_connection()) as connection:
        return [p.to_xcom() for p in plan_partitions(connection, ACTION, run_plan.partitions)]


def _s3_client() -> Any:
    from tracking_sync.connections import s3_client

    return s3_client()


@task
def create_schema(plan: dict) -> None:
    from contextlib import closing

    from tracking_sync.connections import redshift_connection
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.load.schema import create_target_tables

    with closing(redshift_connection()) as connection:
        create_target_tables(RunPlan.from_xcom(plan), connection)  # and the sync state's tables


@task
def create_action_staging(plan: dict, ti=None) -> list[str]:
    """(Re)create this interval's staging table. When no other run of the DAG is running,
    every other staging table is a leftover of a killed or failed run: dropped (returned)."""
    from contextlib import closing

    from tracking_sync.connections import redshift_connection
    from tracking_sync.core.names import DAG_ID
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.load.schema import create_action_staging as create
    from tracking_sync.load.schema import drop_leftover_staging_tables

    run_plan = RunPlan.from_xcom(plan)
    alone = ti.get_dr_count(dag_id=DAG_ID, states=["running"]) <= 1
    with closing(redshift_connection()) as connection:
        create(run_plan, connection)
        return drop_leftover_staging_tables(run_plan, connection) if alone else []


@task
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
def upload(plan: dict, export_summary: dict, ti=None) -> dict[str, Any]:
    """Put the parts of a table exported whole in S3 with their manifest; then, when no other
    run is running, remove the files of this table's intervals that are past the retention."""
    from tracking_sync.core.settings import Settings
    from tracking_sync.stage.upload import upload_export

    settings, client = Settings.from_env(), _s3_client()
    uploaded = upload_export(client, settings, export_summary)
    uploaded["expired_intervals"] = _expire(client, settings, plan, export_summary["table"], ti)
    return uploaded


@task
def upload_partition(plan: dict, export_summary: dict) -> dict[str, Any]:
    """Publish one partition's staged parts under the load prefix (mapped: one per export)."""
    from tracking_sync.core.settings import Settings
    from tracking_sync.stage.upload import publish_parts

    return publish_parts(_s3_client(), Settings.from_env(), export_summary)


@task(multiple_outputs=True)
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
    task_id: str, *, schema: Any, table: Any, source_table: str, uploaded: Any, **kwargs: Any
) -> ReportingS3ToRedshiftOperator:
    """COPY the parts of one upload (its manifest) into `schema.table`, REPLACE: delete and
    COPY in one transaction (the provider's S3ToRedshiftOperator)."""
    return ReportingS3ToRedshiftOperator(
        task_id=task_id,
        redshift_conn_id=REDSHIFT_CONN_ID,
        # Explicit, so that a role_arn in the connection's extra makes the COPY use that IAM
        # role (the provider ignores role_arn for the implicit default).
        aws_conn_id=AWS_CONN_ID,
        schema=schema,
        table=table,
        source_table=source_table,
        s3_bucket=uploaded["bucket"],
        s3_key=uploaded["manifest_key"],
        column_list=None,
        copy_options=COPY_OPTIONS,
        method="REPLACE",
        **kwargs,
    )


@task
def replace_action_rows(plan: dict, action_uploaded: dict, ti=None) -> dict[str, Any]:
    """Publish action in ONE transaction: the interval's (or every) staged row replaces the
    target's, or the captured changes are applied (tracking_sync.load.apply_changes); the
    target's sync state is written in the same transaction."""
    from contextlib import closing

    from tracking_sync.connections import redshift_connection, source_connection
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.load.apply_changes import apply_changes
    from tracking_sync.load.publish import publish_for_run

    run_plan, run_id = RunPlan.from_xcom(plan), getattr(ti, "run_id", "") or ""
    if run_plan.applies_changes:
        capture = action_uploaded["capture"]
        with closing(redshift_connection()) as target:
            return apply_changes(
                target, run_plan, from_lsn=capture["from_lsn"], run_id=run_id, applied_at=run_plan.window_end
            ).summary()
    with closing(redshift_connection()) as target, closing(source_connection()) as source:
        return publish_for_run(run_plan, target, source, uploaded=action_uploaded, run_id=run_id)


@task
def advance_capture_slot(plan: dict, published: dict) -> dict[str, Any]:
    """Move the source's replication slot up to the LSN the target applied (committed by the
    publish), so the source can recycle the WAL before it. Lost or skipped, it is done by
    the next run: the target's applied LSN, not the slot, says what was applied."""
    from contextlib import closing

    from tracking_sync.capture.slot import advance_slot
    from tracking_sync.connections import redshift_connection, source_connection
    from tracking_sync.core.lsn import format_lsn
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.load.sync_state import read_sync_state

    run_plan = RunPlan.from_xcom(plan)
    if run_plan.capture != "logical" or run_plan.slot is None:
        return {"advanced_to": None}
    with closing(redshift_connection()) as target:
        state = read_sync_state(target, run_plan.target_schema)
    if state is None or state.applied_lsn is None:
        return {"advanced_to": None}
    with closing(source_connection()) as source:
        position = advance_slot(source, run_plan.slot, state.applied_lsn)
    log.info("slot %s confirmed up to %s", run_plan.slot, format_lsn(position))
    return {"advanced_to": format_lsn(position)}


@task(outlets=list(LOADED_TABLES))
def validate(
    plan: dict,
    published: dict,
    action_uploaded: dict,
    action_type_uploaded: dict,
    ti=None,
    outlet_events=None,
) -> None:
    """The parity checks of the plan, and the rows the publish placed outside its interval.

    With logical capture, differences that changes committed on the source after the
    target's applied LSN explain (still in the slot: the next run applies and checks them)
    are reported as pending and pass (tracking_sync.validate.pending): the summary and the
    report below say which, and the XCom keeps them (`pending`).

    Passed, it publishes the target tables' Assets (tracking_sync.assets) with the run's
    interval and row counts; failed, it raises and Airflow emits no asset event."""
    from contextlib import closing, nullcontext

    from airflow.sdk.exceptions import AirflowFailException

    from tracking_sync.assets import load_event_extras
    from tracking_sync.connections import (
        redshift_connection,
        source_connection,
        source_streaming_connection,
    )
    from tracking_sync.core.names import REPORT_XCOM_KEY
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.validate.run import validate_for_run

    run_plan = RunPlan.from_xcom(plan)
    # The slot is read through psycopg2 (the capture's driver), beside the streaming source.
    reads_slot = run_plan.capture == "logical" and run_plan.slot is not None
    # A data mismatch raises AirflowFailException: no retry (a retry would find the same data);
    # a malformed check is a NeedsFix error (no retry either); connection errors retry.
    with (
        closing(source_streaming_connection()) as source_conn,
        closing(redshift_connection()) as target_conn,
        closing(source_connection()) if reads_slot else nullcontext() as capture_conn,
    ):
        report = validate_for_run(
            run_plan,
            source_conn,
            target_conn,
            run_id=ti.run_id,
            placed_outside_ids=(published or {}).get("placed_outside_ids", []),
            touched_users=(published or {}).get("touched_users"),
            touched_ids=(published or {}).get("touched_ids", []),
            capture_conn=capture_conn,
        )
    ti.xcom_push(key=REPORT_XCOM_KEY, value=report.to_dict())
    log.info("%s\n%s", report.summary(), report.format_table())
    if not report.passed:
        raise AirflowFailException(
            f"{report.summary()} -- full report: the task log above and XCom "
            f"'{REPORT_XCOM_KEY}' of task {ti.task_id}, run {ti.run_id}"
        )
    extras = load_event_extras(
        plan, action_uploaded, action_type_uploaded, published, dag_id=ti.dag_id, run_id=ti.run_id
    )
    for asset in LOADED_TABLES:
        outlet_events[asset].extra = extras[asset.name]
