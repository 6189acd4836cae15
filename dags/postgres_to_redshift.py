"""
# postgres_to_redshift

Moves the tracking tables `action` and `action_type` from the source PostgreSQL
(connection `postgres_source`) to Redshift (`redshift_default`) through S3
(`aws_default`, bucket `TRACKING_SYNC_BUCKET`). Nightly it moves the previous UTC day
of `action` (rows with `action_time` in the run's data interval) and all of
`action_type`; a manual run with `mode=full_refresh` moves everything.

## Tasks, in order
| task | what it does | when it fails |
|---|---|---|
| `plan_run` | checks the params (mode, target schema, validation) and the data interval; nothing has moved yet | the error lists what is allowed: trigger again with valid params |
| `create_schema` | creates the target schema and tables if missing (`create_target_tables.sql`) and an empty staging table for this interval (`create_action_staging.sql`) | permissions on Redshift, or the cluster is down: retries; then check `redshift_default` |
| `export_action`, `export_action_type` | stream `COPY (SELECT ...) TO STDOUT` of the run's slice into zstd CSV parts on `TRACKING_SYNC_STAGING_DIR`; XCom: rows, bytes, part URIs | source unreachable or a statement timeout: retries; check `postgres_source` |
| `upload_action`, `upload_action_type` | uploads the parts under `s3://<bucket>/<prefix>/<table>/<interval>/` with a `manifest.json`; removes parts of earlier attempts | "staging part ... is not at ...": export and upload ran on workers that do not share `TRACKING_SYNC_STAGING_DIR`: point it at shared storage, then clear `export_*` |
| `load_action_type` | COPY with REPLACE into `action_type` (delete + COPY in one transaction) | the log shows the `stl_load_errors` rows (file, line, column, reason); the target is unchanged |
| `load_action_staging` | COPY of the parts into the interval's staging table | as above; only the staging table was touched |
| `replace_action_rows` | in ONE transaction: delete the target's `action` rows of the interval (all rows for a full refresh), insert the staged rows, drop the staging table | nothing is half-applied: clear `create_schema` and what follows |

## Rerunning and backfilling
Every task is idempotent per interval: clearing any run (or a range of runs) and running it
again leaves the target equal to the source for those intervals, rows deleted or changed in
the source included. Backfill a range from the UI (Trigger → Backfill) or
`airflow backfill create --dag-id postgres_to_redshift --from-date 2025-03-01 --to-date 2025-03-07`.
If a run failed after `create_schema`, a staging table `action_staging_<interval>` stays in the
target schema until that interval runs again; it is safe to drop.

## Params
- `mode`: `incremental` (the run's data interval) or `full_refresh` (both tables, everything).
- `target_schema`: the Redshift schema to load, a plain lower-case identifier.
- `validation`: `scoped` (the interval's users) or `full` (every user), for the `validate` task.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import CronDataIntervalTimetable, Param, chain, dag, task

from tracking_sync import config, tables
from tracking_sync.load import COPY_OPTIONS, action_staging_table
from tracking_sync.operators import ReportingS3ToRedshiftOperator
from tracking_sync.params import DEFAULT_TARGET_SCHEMA, MODES, VALIDATIONS

SQL_DIR = Path(__file__).resolve().parent.parent / "include" / "sql"


@dag(
    dag_id="postgres_to_redshift",
    # Real data intervals: the run at 2025-03-02 00:00 UTC moves [03-01, 03-02). Airflow 3's
    # plain cron schedule (CronTriggerTimetable) would give start == end.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "data-engineering",
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=2),
    },
    params={
        "mode": Param(
            "incremental",
            enum=list(MODES),
            description="incremental: the run's data interval of action (and all of "
            "action_type); full_refresh: both tables, every row.",
        ),
        "target_schema": Param(
            DEFAULT_TARGET_SCHEMA,
            type="string",
            pattern=r"^[a-z_][a-z0-9_]*$",
            maxLength=127,
            description="Redshift schema to load into: lower-case letters, digits and _.",
        ),
        "validation": Param(
            "scoped",
            enum=list(VALIDATIONS),
            description="scoped: validate the users active in the interval; full: everyone.",
        ),
    },
    template_searchpath=[str(SQL_DIR)],
    user_defined_macros={
        "tracking_tables": tables.TABLES,
        "action_staging_table": action_staging_table,
    },
    doc_md=__doc__,
    tags=["tracking", "redshift", "postgres"],
)
def postgres_to_redshift():
    @task
    def plan_run(params=None, data_interval_start=None, data_interval_end=None) -> dict:
        from tracking_sync.params import plan_run

        return plan_run(params, data_interval_start, data_interval_end)

    @task
    def export(table_name: str, plan: dict) -> dict:
        from tracking_sync.export import export_for_run

        return export_for_run(table_name, plan)

    @task
    def upload(export_summary: dict) -> dict:
        from tracking_sync.staging import upload_for_run

        return upload_for_run(export_summary)

    @task
    def replace_action_rows(plan: dict) -> int:
        from tracking_sync.load import publish_for_run

        return publish_for_run(plan)

    plan = plan_run()

    create_schema = SQLExecuteQueryOperator(
        task_id="create_schema",
        conn_id=config.REDSHIFT_CONN_ID,
        sql=["redshift/create_target_tables.sql", "redshift/create_action_staging.sql"],
        split_statements=True,
        return_last=False,
    )

    def copy_task(task_id: str, table: str, upload_task_id: str, method: str):
        upload_result = f"ti.xcom_pull(task_ids='{upload_task_id}')"
        return ReportingS3ToRedshiftOperator(
            task_id=task_id,
            redshift_conn_id=config.REDSHIFT_CONN_ID,
            # Explicit, so that a role_arn in the connection's extra makes the COPY use
            # that IAM role (the provider ignores role_arn for the implicit default).
            aws_conn_id=config.AWS_CONN_ID,
            schema="{{ params.target_schema }}",
            table=table,
            s3_bucket="{{ " + upload_result + "['bucket'] }}",
            s3_key="{{ " + upload_result + "['manifest_key'] }}",
            column_list=None,
            copy_options=COPY_OPTIONS,
            method=method,
        )

    for table_name in ("action_type", "action"):
        exported = export.override(task_id=f"export_{table_name}")(table_name, plan)
        uploaded = upload.override(task_id=f"upload_{table_name}")(exported)
        if table_name == "action_type":
            load = copy_task("load_action_type", "action_type", "upload_action_type", "REPLACE")
            chain([uploaded, create_schema], load)
        else:
            load = copy_task(
                "load_action_staging",
                "{{ action_staging_table(params, data_interval_start, data_interval_end) }}",
                "upload_action",
                "REPLACE",
            )
            chain([uploaded, create_schema], load, replace_action_rows(plan))
    chain(plan, create_schema)


dag = postgres_to_redshift()

if __name__ == "__main__":
    dag.test()
