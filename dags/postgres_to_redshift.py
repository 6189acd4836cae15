"""postgres_to_redshift: the tracking tables `action` and `action_type` from PostgreSQL to
Redshift through S3, nightly or as a backfill or full refresh, validated on both engines.

Wiring only: schedule, params, tasks in order, docs. The code is in plugins/tracking_sync; the
on-call runbook, shown as this DAG's docs in the UI, is docs/runbook.md.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, chain, dag

from tracking_sync import tasks
from tracking_sync.connections import redact_task_logs_callback
from tracking_sync.core.names import DAG_ID, IDENTIFIER_PATTERN, MAX_IDENTIFIER_BYTES, PLAN_XCOM_KEY
from tracking_sync.core.params import DEFAULT_PARAMS, MAX_PARTITIONS, MODES, VALIDATIONS
from tracking_sync.oncall.deadlines import nightly_deadline
from tracking_sync.oncall.failures import RETRY_POLICY, on_retry_callback
from tracking_sync.oncall.notifications import on_failure_callback

# The runbook has one source, docs/runbook.md, shown in the UI as the DAG's docs. Given a doc_md
# that ends in ".md", Airflow's DAG reads that file itself when it builds the DAG and serializes
# its text for the UI. Airflow 3.3 opens the path as given (airflow.sdk's _convert_doc_md), not
# through template_searchpath, so the path is made from this file's location: computing it does
# no I/O. A deployment ships docs/ beside dags/; without it the docs show the path.
RUNBOOK = Path(__file__).parent.parent / "docs" / "runbook.md"


@dag(
    dag_id=DAG_ID,
    # Real data intervals: the run at 2025-03-02 00:00 UTC moves [03-01, 03-02). Airflow 3's
    # plain cron schedule (CronTriggerTimetable) would give start == end.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # A new deployment runs nothing until someone unpauses it: unpaused, the latest interval
    # starts at once, and that first run finds no sync state on the target and bootstraps it
    # (the slot, then action whole, validated in full: tracking_sync.planning).
    is_paused_upon_creation=True,
    # Not finished TRACKING_SYNC_DEADLINE_MINUTES (default 6 h) after its interval ended:
    # the on-call notifier hears of it.
    deadline=nightly_deadline(),
    default_args={
        "owner": "data-engineering",
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=2),
        # Data and configuration errors fail at once; transient ones retry, one line each.
        "retry_policy": RETRY_POLICY,
        "on_retry_callback": on_retry_callback,
        # One line for on-call, and the notifier named in TRACKING_SYNC_NOTIFIER if any.
        "on_failure_callback": on_failure_callback,
        # Secrets registered with the masker are redacted in every task's own log lines.
        "on_execute_callback": redact_task_logs_callback,
    },
    params={
        "mode": Param(
            DEFAULT_PARAMS["mode"],
            enum=list(MODES),
            description="incremental: scheduled runs apply the changes captured since the last "
            "run, manual runs and backfills reload their interval; full_refresh: every row; "
            "changes: apply the captured changes now.",
        ),
        "target_schema": Param(
            DEFAULT_PARAMS["target_schema"],
            type="string",
            pattern=f"^{IDENTIFIER_PATTERN}$",
            maxLength=MAX_IDENTIFIER_BYTES,
            description="Redshift schema to load into: lower-case letters, digits and _.",
        ),
        "validation": Param(
            DEFAULT_PARAMS["validation"],
            enum=list(VALIDATIONS),
            description="scoped: the users active in the interval, with their whole history, "
            "and the interval's days (cost grows with the interval's users); full: everything "
            "before the interval's end. A full refresh validates in full.",
        ),
        "partitions": Param(
            DEFAULT_PARAMS["partitions"],
            type=["null", "integer"],
            minimum=1,
            maximum=MAX_PARTITIONS,
            description="full_refresh only: the number of slices action is exported and "
            f"uploaded in, in parallel (1 to {MAX_PARTITIONS}; one task each, loaded by one "
            "COPY). Empty: the deployment's TRACKING_SYNC_PARTITIONS (default 1). Nightly runs "
            "and backfills are one slice.",
        ),
    },
    doc_md=str(RUNBOOK),
    tags=["tracking", "redshift", "postgres"],
)
def postgres_to_redshift():
    # plan_run's return value is the id ranges export_action is mapped over (Airflow maps over
    # return values only); the run plan every task takes is its XCom "plan", each key its own.
    planned = tasks.plan_run()
    plan = planned[PLAN_XCOM_KEY]
    # The target's tables; alone, the sweep of staging tables killed runs left. Each load
    # (re)creates what it COPies into itself (its staging table too): it can be cleared alone.
    schema = tasks.create_schema(plan)

    # action_type: the small dictionary, always whole, replaced by one COPY transaction.
    # Runs of different intervals (a backfill) never reload it at once.
    action_type_exported = tasks.export.override(task_id="export_action_type")("action_type", plan)
    action_type_uploaded = tasks.upload.override(task_id="upload_action_type")(plan, action_type_exported)
    action_type_loaded = tasks.load(
        "load_action_type",
        plan=plan,
        schema=planned["target_schema"],
        table="action_type",
        source_table="action_type",
        uploaded=action_type_uploaded,
        max_active_tis_per_dag=1,
    )
    chain(schema, action_type_loaded)

    # action: the run's slice, exported and uploaded by one mapped task per partition (a
    # partitioned full refresh; one otherwise), listed in one manifest, COPied into its staging
    # table by one COPY, then published in one transaction.
    action_exported = (
        tasks.export.override(task_id="export_action")
        .partial(table_name="action", plan=plan)
        .expand(partition=planned)
    )
    action_parts = (
        tasks.upload_partition.override(task_id="upload_action")
        .partial(plan=plan)
        .expand(export_summary=action_exported)
    )
    action_uploaded = tasks.write_manifest.override(task_id="write_action_manifest")(
        "action", plan, action_parts
    )
    action_staged = tasks.load(
        "load_action_staging",
        plan=plan,
        schema=planned["target_schema"],
        table=planned["staging_table"],
        source_table="action",
        uploaded=action_uploaded,
    )
    chain(schema, action_staged)
    action_published = tasks.replace_action_rows(plan, action_uploaded)
    chain(action_staged, action_published)
    # Only after the publish committed the applied LSN: the source may then drop older WAL.
    slot_advanced = tasks.advance_capture_slot(plan, action_published)

    # Passed, validate publishes the Assets of action and action_type (interval, row counts).
    validated = tasks.validate(plan, action_published, action_uploaded, action_type_uploaded)
    chain(slot_advanced, validated)
    chain(action_type_loaded, validated)


dag = postgres_to_redshift()

if __name__ == "__main__":
    dag.deadline = None  # Airflow 3.3's dag.test() fails a DAG with one (tracking_sync.oncall.deadlines)
    dag.test()
