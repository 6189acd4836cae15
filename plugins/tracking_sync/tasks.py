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
def plan_run(params=None, dag_run=None, data_interval_start=None, data_interval_end=None) -> dict[str, Any]:
    """Check the params, the conf keys, the interval and the settings, and probe the staging
    area (a tiny write and delete). Bad params or settings fail here, before any data moves,
    at once (InvalidParams and MissingSetting need a fix, see tracking_sync.oncall.failures)."""
    from tracking_sync.core.plan import plan_run as make_plan
    from tracking_sync.core.settings import Settings

    settings = Settings.from_env()
    plan = make_plan(
        params,
        data_interval_start,
        data_interval_end,
        conf=getattr(dag_run, "conf", None),
        run_after=getattr(dag_run, "run_after", None),
        default_partitions=settings.partitions,
    )
    area = settings.scratch
    area.probe(
        None if area.is_local else _s3_client(), f"{plan.slice_label}-{getattr(dag_run, 'run_id', 'run')}"
    )
    return plan.to_xcom()


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
    if run_plan.partitions <= 1:
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
        create_target_tables(RunPlan.from_xcom(plan), connection)


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
    action) into the scratch area, keyed on the slice, the partition and this attempt."""
    from contextlib import closing

    from tracking_sync.connections import source_connection
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.core.settings import Settings
    from tracking_sync.extract.export import export_for_run
    from tracking_sync.extract.partitions import Partition

    settings = Settings.from_env()
    client = None if settings.scratch.is_local else _s3_client()
    with closing(source_connection()) as connection:
        return export_for_run(
            table_name,
            RunPlan.from_xcom(plan),
            settings,
            connection,
            partition=Partition.from_xcom(partition),
            attempt=getattr(ti, "try_number", None) or 1,
            s3_client=client,
        )


@task(multiple_outputs=True)
def upload(plan: dict, export_summary: dict) -> dict[str, Any]:
    """Put the parts of a table exported whole in S3 with their manifest; then remove the
    files of this table's intervals that are past the retention."""
    from tracking_sync.core.settings import Settings
    from tracking_sync.stage.upload import upload_export

    settings, client = Settings.from_env(), _s3_client()
    uploaded = upload_export(client, settings, export_summary)
    uploaded["expired_intervals"] = _expire(client, settings, plan, export_summary["table"])
    return uploaded


@task
def upload_partition(plan: dict, export_summary: dict) -> dict[str, Any]:
    """Publish one partition's staged parts under the load prefix (mapped: one per export)."""
    from tracking_sync.core.settings import Settings
    from tracking_sync.stage.upload import publish_parts

    return publish_parts(_s3_client(), Settings.from_env(), export_summary)


@task(multiple_outputs=True)
def write_manifest(table_name: str, plan: dict, uploads: list[dict]) -> dict[str, Any]:
    """ONE manifest of every partition's parts (what the load's single COPY reads); removes
    what earlier attempts left, and the intervals past the retention."""
    from tracking_sync.core.settings import Settings
    from tracking_sync.stage.upload import write_manifest as write

    settings, client = Settings.from_env(), _s3_client()
    written = write(client, settings, table_name, list(uploads))
    written["expired_intervals"] = _expire(client, settings, plan, table_name)
    return written


def _expire(client: Any, settings: Any, plan: dict, table_name: str) -> list[str]:
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.stage.retention import expire_old_intervals

    return expire_old_intervals(client, settings, table_name, RunPlan.from_xcom(plan).window_end)


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
def replace_action_rows(plan: dict) -> dict[str, Any]:
    from contextlib import closing

    from tracking_sync.connections import redshift_connection, source_connection
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.load.publish import publish_for_run

    with closing(redshift_connection()) as target, closing(source_connection()) as source:
        return publish_for_run(RunPlan.from_xcom(plan), target, source)


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

    Passed, it publishes the target tables' Assets (tracking_sync.assets) with the run's
    interval and row counts; failed, it raises and Airflow emits no asset event."""
    from contextlib import closing

    from airflow.sdk.exceptions import AirflowFailException

    from tracking_sync.assets import load_event_extras
    from tracking_sync.connections import redshift_connection, source_streaming_connection
    from tracking_sync.core.names import REPORT_XCOM_KEY
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.validate.run import validate_for_run

    # A data mismatch raises AirflowFailException: no retry (a retry would find the same data);
    # a malformed check is a NeedsFix error (no retry either); connection errors retry.
    with closing(source_streaming_connection()) as source_conn, closing(redshift_connection()) as target_conn:
        report = validate_for_run(
            RunPlan.from_xcom(plan),
            source_conn,
            target_conn,
            run_id=ti.run_id,
            placed_outside_ids=(published or {}).get("placed_outside_ids", []),
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
