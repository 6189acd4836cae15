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
| `plan_run` | checks the params (mode, target schema, validation, partitions), the conf keys, the data interval and the settings, and probes the staging area (`TRACKING_SYNC_STAGING_URL`: a tiny write and delete); its result, the run plan, is what every later task follows; nothing has moved yet | at once, no retries: the error lists what is allowed (and any unknown conf key), or names the setting that cannot be used: fix it and trigger again |
| `partition_action` | the id ranges `export_action` is mapped over: one for a nightly run or a backfill; `partitions` ranges of about equal rows for a full refresh, from the source's statistics (`pg_stats`, or min/max of `id`) | source unreachable: retries; check `postgres_source` |
| `create_schema` | creates the target schema and tables if missing (`create_target_tables.sql`) | permissions on Redshift, or the cluster is down: retries; then check `redshift_default` |
| `create_action_staging` | (re)creates the empty staging table of this interval, `action_staging_<interval>` (`create_action_staging.sql`); when no other run is running, drops staging tables killed runs left | as above |
| `export_action` (one per partition), `export_action_type` | stream `COPY (SELECT ...) TO STDOUT` of the run's slice (of one partition) into zstd CSV parts in the staging area (`TRACKING_SYNC_STAGING_URL`: a local folder, or an `s3://` prefix when workers share no disk); XCom: rows, bytes, part URIs | source unreachable or a statement timeout: retries; check `postgres_source`. A full staging disk fails at once, naming the folder and the setting |
| `upload_action` (one per partition), `upload_action_type` | publish the parts under `s3://<bucket>/<prefix>/<table>/<interval>/` (multipart upload, or a server-side copy from an `s3://` staging area); `upload_action_type` and `write_action_manifest` write ONE `manifest.json` of every partition's parts and remove parts of earlier attempts, and intervals past `TRACKING_SYNC_RETENTION_DAYS` | "staging part ... is not at file://...": export and upload ran on workers that share no disk: set `TRACKING_SYNC_STAGING_URL=s3://bucket/prefix` on every worker, then clear `export_*` |
| `load_action_type` | COPY with REPLACE into `action_type` (delete + COPY in one transaction) | a rejected row fails at once, naming the source row's id, the column, the limit and the value; a missing manifest or part too; the target is unchanged. Connection errors retry |
| `load_action_staging` | ONE COPY of the manifest (every partition's parts) into the interval's staging table | as above; only the staging table was touched |
| `replace_action_rows` | in ONE transaction: lock the target table (a concurrent publish waits), carry rows that moved out of the interval in the source to their new place, delete the target's `action` rows of the interval and the staged ids, insert the staged rows, drop the staging table. A full refresh swaps its staging table in instead (RENAME; late-binding views and grants kept), or copies when a bound view needs the old table | nothing is half-applied: clear `create_action_staging` and what follows. Over 10,000 moved rows: rerun the days they moved to first, or a full refresh |
| `validate` | runs every parity check (`include/sql/parity/*.sql`) on PostgreSQL and on Redshift over `action_time < data_interval_end`, and the rows the publish placed outside the interval by id, and compares the results by key; report in XCom `validation_report` and in the log as a table | a data mismatch fails at once, without retries: read the report (see below). Connection errors retry |

## When `validate` fails
The log line `TRACKING_SYNC FAILED ... what=... report=...` (and the configured notifier,
`TRACKING_SYNC_NOTIFIER`) says what differs; the task log has the whole report: users
that differ, users missing on either side, the largest differences side by side, the
days whose counts differ, and the repair command.
- **days differ** (rows missing, extra, or moved in time): backfill those days, e.g.
  `airflow backfill create --dag-id postgres_to_redshift --from-date 2025-03-04 --to-date 2025-03-04 --reprocess-behavior completed --max-active-runs 1`
  (UI: Trigger → Backfill, that date range, Reprocess Behaviour "All Runs"). Reruns are idempotent.
- **"action_time must be TIMESTAMPTZ on Redshift"**: the target column is TIMESTAMP, so
  Redshift's EXTRACT(EPOCH) returns whole seconds and every session total is off. Reloading
  does not help: drop the target tables (or alter the column), then trigger `mode=full_refresh`.
- **users differ but no day does**: a scoped run saw another row of a user active in the
  interval; rerun that interval with `validation=full` (the report prints the backfill
  command with `--dag-run-conf`) to name the days, then backfill them. Differences
  everywhere: trigger a run with `mode=full_refresh`.
- **the source changed after the load** (late rows inside the interval): rerun the interval.
- A check file that is malformed fails without retries too; the error names the file and the fix.

## When it is late
A nightly run not finished `TRACKING_SYNC_DEADLINE_MINUTES` (default 360) after its interval
ended sends `TRACKING_SYNC LATE dag=... run=... interval=... state=...: not finished 6h 12m
after its interval ended ...` to the notifier (a Deadline Alert, run by the triggerer). Look
at the run's grid: a task waiting for a slot, retrying (`TRACKING_SYNC RETRY` lines), or an
earlier run still holding the one active run.

## Assets
When `validate` passes, the run publishes the Assets `redshift_default.tracking.action` and
`redshift_default.tracking.action_type` (extra: the run, its interval, `target_schema` and
row counts); DAGs scheduled on them run after a validated load only.

## First run of a new deployment
The DAG starts paused. Run `mode=full_refresh` first, while it is paused
(`airflow dags test postgres_to_redshift --conf '{"mode": "full_refresh"}'`), then
unpause: the latest interval runs at once, and an incremental run into an empty target
would fail its scoped validation.

## Rerunning and backfilling
Every task is idempotent per interval: clearing any run (or a range of runs) and running it
again leaves the target equal to the source for those intervals, rows deleted or changed in
the source included. Backfill a range from the UI (Trigger → Backfill) or
`airflow backfill create --dag-id postgres_to_redshift --from-date 2025-03-01 --to-date 2025-03-07 --max-active-runs 1`
(one day at a time, in order, as the nightly runs: a backfill otherwise runs up to 10 days at
once, and a day's scoped validation reads the days before it).
A manual run needs a logical date for `mode=incremental` (the CLI's `airflow dags trigger`
without `--logical-date` makes a run with no data interval; `plan_run` refuses it and says so).
A run triggered in the UI with logical date D moves the day before D (the CLI's
`dags trigger --logical-date` takes the interval from the moment it is triggered: backfill
past days from the CLI). Conf keys other than the params are
refused. A staging table `action_staging_<interval>` left by a killed run is dropped by the
next run that runs alone (or by that interval's rerun). A rerun carries rows that a late
correction moved out of its interval to their new place, so no row is lost between days.
Failures that need a fix (bad params, rejected rows, missing files, a full disk) fail at once
without retries; transient ones retry, each retry logging `TRACKING_SYNC RETRY ...` with when.

## Params
- `mode`: `incremental` (the run's data interval) or `full_refresh` (both tables, everything).
- `target_schema`: the Redshift schema to load, a plain lower-case identifier.
- `partitions`: a full refresh only: how many slices of `action` are exported and uploaded in
  parallel (1 to 64, one task instance each, then one manifest and one COPY); empty:
  `TRACKING_SYNC_PARTITIONS` (default 1). Nightly runs and backfills are one slice.
- `validation`: `scoped` (the users active in the interval, with their whole history before
  its end, and the interval's days: the cost grows with the interval's users, not the table)
  or `full` (everything before the interval's end), for the `validate` task. A full refresh
  always validates in full.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, chain, dag

from tracking_sync import tasks
from tracking_sync.connections import redact_task_logs_callback
from tracking_sync.core.names import DAG_ID, IDENTIFIER_PATTERN, MAX_IDENTIFIER_BYTES
from tracking_sync.core.params import DEFAULT_PARAMS, MAX_PARTITIONS, MODES, VALIDATIONS
from tracking_sync.oncall.deadlines import nightly_deadline
from tracking_sync.oncall.failures import RETRY_POLICY, on_retry_callback
from tracking_sync.oncall.notifications import on_failure_callback


@dag(
    dag_id=DAG_ID,
    # Real data intervals: the run at 2025-03-02 00:00 UTC moves [03-01, 03-02). Airflow 3's
    # plain cron schedule (CronTriggerTimetable) would give start == end.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # A new deployment runs nothing until someone unpauses it: unpaused, the latest interval
    # starts at once, and an incremental run into an empty target fails its validation.
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
            description="incremental: the run's data interval of action (and all of "
            "action_type); full_refresh: both tables, every row.",
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
    doc_md=__doc__,
    tags=["tracking", "redshift", "postgres"],
)
def postgres_to_redshift():
    plan = tasks.plan_run()
    schema = tasks.create_schema(plan)
    action_staging = tasks.create_action_staging(plan)
    chain(schema, action_staging)

    # action_type: the small dictionary, always whole, replaced by one COPY transaction.
    # Runs of different intervals (a backfill) never reload it at once.
    action_type_exported = tasks.export.override(task_id="export_action_type")("action_type", plan)
    action_type_uploaded = tasks.upload.override(task_id="upload_action_type")(plan, action_type_exported)
    action_type_loaded = tasks.load(
        "load_action_type",
        schema=plan["target_schema"],
        table="action_type",
        source_table="action_type",
        uploaded=action_type_uploaded,
        max_active_tis_per_dag=1,
    )
    chain(schema, action_type_loaded)

    # action: the run's slice, exported and uploaded by one mapped task per partition (a
    # partitioned full refresh; one otherwise), listed in one manifest, COPied into its staging
    # table by one COPY, then published in one transaction.
    action_partitions = tasks.partition_action(plan)
    action_exported = (
        tasks.export.override(task_id="export_action")
        .partial(table_name="action", plan=plan)
        .expand(partition=action_partitions)
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
        schema=plan["target_schema"],
        table=plan["staging_table"],
        source_table="action",
        uploaded=action_uploaded,
    )
    chain(action_staging, action_staged)
    action_published = tasks.replace_action_rows(plan)
    chain(action_staged, action_published)

    # Passed, validate publishes the Assets of action and action_type (interval, row counts).
    validated = tasks.validate(plan, action_published, action_uploaded, action_type_uploaded)
    chain(action_type_loaded, validated)


dag = postgres_to_redshift()

if __name__ == "__main__":
    dag.deadline = None  # Airflow 3.3's dag.test() fails a DAG with one (tracking_sync.oncall.deadlines)
    dag.test()
