"""The DAG's tasks: thin Airflow wrappers around the stage functions, one per stage.

Each task takes the run plan (plan_run's XCom) and what its upstream stage returned,
opens its connections through tracking_sync.connections, calls one stage function
and returns plain values. Heavy imports stay inside the tasks: nothing here does I/O
or imports a driver when the DAG file is parsed.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from tracking_sync.load import COPY_OPTIONS
from tracking_sync.names import AWS_CONN_ID, REDSHIFT_CONN_ID
from tracking_sync.operators import ReportingS3ToRedshiftOperator


@task(multiple_outputs=True)
def plan_run(params=None, dag_run=None, data_interval_start=None, data_interval_end=None) -> dict[str, Any]:
    """Check the params, the conf keys and the interval; bad ones fail here, before any data
    moves, at once (InvalidParams needs a fix, see tracking_sync.failures)."""
    from tracking_sync.plan import plan_run as make_plan

    plan = make_plan(
        params,
        data_interval_start,
        data_interval_end,
        conf=getattr(dag_run, "conf", None),
        run_after=getattr(dag_run, "run_after", None),
    )
    return plan.to_xcom()


@task
def create_schema(plan: dict) -> None:
    from contextlib import closing

    from tracking_sync.connections import redshift_connection
    from tracking_sync.plan import RunPlan
    from tracking_sync.schema import create_target_tables

    with closing(redshift_connection()) as connection:
        create_target_tables(RunPlan.from_xcom(plan), connection)


@task
def create_action_staging(plan: dict) -> None:
    from contextlib import closing

    from tracking_sync.connections import redshift_connection
    from tracking_sync.plan import RunPlan
    from tracking_sync.schema import create_action_staging as create

    with closing(redshift_connection()) as connection:
        create(RunPlan.from_xcom(plan), connection)


@task
def export(table_name: str, plan: dict) -> dict[str, Any]:
    from contextlib import closing

    from tracking_sync.config import Settings
    from tracking_sync.connections import source_connection
    from tracking_sync.export import export_for_run
    from tracking_sync.plan import RunPlan

    settings = Settings.from_env()
    with closing(source_connection()) as connection:
        return export_for_run(table_name, RunPlan.from_xcom(plan), settings, connection)


@task(multiple_outputs=True)
def upload(export_summary: dict) -> dict[str, Any]:
    from tracking_sync.config import Settings
    from tracking_sync.connections import s3_client
    from tracking_sync.staging import upload_export

    return upload_export(s3_client(), Settings.from_env(), export_summary)


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
    from tracking_sync.load import publish_for_run
    from tracking_sync.plan import RunPlan

    with closing(redshift_connection()) as target, closing(source_connection()) as source:
        return publish_for_run(RunPlan.from_xcom(plan), target, source)


@task
def validate(plan: dict, ti=None) -> None:
    from tracking_sync.plan import RunPlan
    from tracking_sync.validate import validate_task

    validate_task(RunPlan.from_xcom(plan), ti)
