"""The provider's S3ToRedshiftOperator, plus what on-call needs around it.

Not a re-implementation: execute() still builds and runs the provider's COPY. It adds:
- the aws connection's secret key (and token) go to the Task SDK's secrets masker
  before the COPY statement, which carries them unless the connection has a role_arn,
  is logged, and connections.redact_task_logs() makes the task process's own log
  chain apply that masker (without it the statement was printed in clear under
  dag.test() and on a LocalExecutor worker's stdout);
- when the COPY fails, the rows of stl_load_errors for the run's files are logged and
  put in the error, each naming the source row's id, the column, the limit and a
  preview of the value, instead of Redshift's bare "Check 'stl_load_errors' system
  table for details";
- before the COPY, what it needs is made sure of (tracking_sync.load.inputs), so the load
  can be cleared on its own, with its downstream, after the run succeeded or failed: the
  target's tables, the run's staging table (created again: the publish dropped or swapped
  it), the manifest (written again from the upload's part URIs); a part that is gone fails
  at once, naming the export task to clear instead (StagedFilesExpired);
- a COPY that rejected rows raises LoadRejected (a retry would meet the same files: it
  fails at once); one that found no manifest or part raises StagedFilesMissing, retried:
  files another run's cleanup or a lifecycle rule removed come back when the upload is
  cleared, and a transient S3 listing may heal; a staging table dropped between its
  create and the COPY (42P01, another run's cleanup) raises StagingTableMissing, retried:
  the retry creates it again. Neither is a data error. Anything else (a dropped
  connection, a serializable isolation conflict) is raised as it is, and retried;
- a refused privilege or login, or S3 refusing the COPY's IAM role, raises AccessRefused
  naming the grant that fixes it (tracking_sync.oncall.refusals): it fails at once.
"""

from __future__ import annotations

import re
from typing import Any

from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator

from tracking_sync.connections import mask_aws_credentials, redshift_connection
from tracking_sync.core.errors import LoadRejected, StagedFilesMissing, StagingTableMissing
from tracking_sync.core.names import AWS_CONN_ID, REDSHIFT_CONN_ID
from tracking_sync.load.copy import COPY_OPTIONS, format_load_errors, load_errors
from tracking_sync.oncall.refusals import refused

# Redshift's words for a COPY whose manifest or part is missing (no stl_load_errors row).
_FILES_MISSING = re.compile(
    r"manifest file|manifest.*does not exist|NoSuchKey|no files found|S3 prefix .* does not exist",
    re.IGNORECASE,
)
# The table the COPY loads is gone (42P01): dropped after the load (re)created it.
_TABLE_MISSING = re.compile(r"42P01|(?<!of )relation \"[^\"]+\" does not exist", re.IGNORECASE)
# Anything else it cannot do on the same files and table (a column that does not exist).
_CANNOT_LOAD = re.compile(r"does not exist", re.IGNORECASE)


class ReportingS3ToRedshiftOperator(S3ToRedshiftOperator):
    """`source_table`: the table whose rows the files hold, named in a rejected row's error
    (the COPY may load a staging table). `plan` (the run plan's XCom) and `part_uris` (the
    upload's): what the load makes sure of before its COPY; `export_task`: the task that
    makes the parts, named when one is gone."""

    template_fields = (*S3ToRedshiftOperator.template_fields, "plan", "part_uris")
    ui_color = "#99e699"

    def __init__(
        self,
        *,
        source_table: str | None = None,
        plan: Any = None,
        part_uris: Any = None,
        export_task: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_table = source_table
        self.plan = plan
        self.part_uris = part_uris
        self.export_task = export_task

    def execute(self, context: Any) -> None:
        mask_aws_credentials(self.aws_conn_id)
        try:
            self.ensure_inputs(context)
        except Exception as error:
            translated = refused(error, schema=self.schema)  # the DDL or the listing refused: name the grant
            if translated is not None:
                raise translated from error
            raise
        try:
            super().execute(context)
        except Exception as error:
            translated = refused(error, schema=self.schema)  # a privilege, a login, the COPY role's S3 access
            if translated is not None:
                raise translated from error
            if _TABLE_MISSING.search(str(error)):
                raise StagingTableMissing(
                    f"COPY into {self.schema}.{self.table}: the table is gone ({_first_line(error)}); "
                    "it was created again just before the COPY, so something dropped it meanwhile "
                    "(another run's cleanup of leftover staging tables). Retried: the retry creates "
                    "it again; the target is unchanged"
                ) from error
            prefix = f"s3://{self.s3_bucket}/{self.s3_key.rsplit('/', 1)[0]}/"
            errors = self._load_errors(prefix)
            if not errors and _FILES_MISSING.search(str(error)):
                raise StagedFilesMissing(
                    f"COPY into {self.schema}.{self.table} found no manifest or part at "
                    f"s3://{self.s3_bucket}/{self.s3_key} ({str(error).strip().splitlines()[0]}): the "
                    "files were removed after the upload (a lifecycle rule, or an earlier attempt's "
                    "cleanup) while the COPY ran. Retried: the retry writes a missing manifest again, "
                    "or fails at once naming the export task to clear"
                ) from error
            if not errors and not _CANNOT_LOAD.search(str(error)):
                raise  # not the data: a connection, a conflict, a timeout -- retried
            report = (
                format_load_errors(errors, self.source_table or self.table) if errors else str(error).strip()
            )
            self.log.error("COPY into %s.%s failed:\n%s", self.schema, self.table, report)
            raise LoadRejected(
                load_rejected_message(self.schema, self.table, self.s3_bucket, self.s3_key, report)
            ) from error

    def ensure_inputs(self, context: Any) -> None:
        """The target's tables, the staging table, the manifest and the parts
        (tracking_sync.load.inputs); without a plan (a bare operator) nothing is checked."""
        if not self.plan:
            return
        from contextlib import closing

        from tracking_sync.connections import s3_client
        from tracking_sync.core.plan import RunPlan
        from tracking_sync.load.inputs import ensure_staged_files, ensure_target_tables

        with closing(redshift_connection(self.redshift_conn_id)) as connection:
            made = ensure_target_tables(connection, RunPlan.from_xcom(self.plan), self.table)
        if self.part_uris:
            made += ensure_staged_files(
                s3_client(self.aws_conn_id if isinstance(self.aws_conn_id, str) else AWS_CONN_ID),
                self.s3_bucket,
                self.s3_key,
                list(self.part_uris),
                export_task=self.export_task or f"export_{self.source_table or self.table}",
                run_id=str(getattr(context.get("ti"), "run_id", "") or context.get("run_id") or "this run"),
            )
        for what in made:
            self.log.info("made sure of before the COPY: %s", what)

    def _load_errors(self, prefix: str) -> list[dict[str, Any]]:
        try:
            connection = redshift_connection(self.redshift_conn_id)
            try:
                return load_errors(connection, prefix)
            finally:
                connection.close()
        except Exception as error:  # the report is a courtesy; the COPY error is what counts
            self.log.warning("could not read stl_load_errors: %s", error)
            return []


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def load_rejected_message(schema: str, table: str, bucket: str, key: str, report: str) -> str:
    """The error's first line is the whole story (what, where, what to do): it is what the
    UI's failed-task preview, the on-call line and the notifier show. Further rejected rows
    follow on the next lines."""
    first, _, rest = report.partition("\n")
    more = f" (and {rest.count(chr(10)) + 1} more, below)" if rest else ""
    return (
        f"COPY into {schema}.{table} failed: {first}{more} -- the target is unchanged (the COPY's "
        "transaction rolled back). Fix the source row (or the column's type in include/sql and "
        "tracking_sync.core.tables), then clear the export task of this run (upload and load follow); "
        f"files s3://{bucket}/{key}" + (f"\n{rest}" if rest else "")
    )


def copy_again(plan: dict, uploaded: dict, context: Any, *, task_id: str = "load_action_staging") -> None:
    """The load's COPY of the run's manifest into its staging table, run again from the task
    that needs the table (the publish, cleared after it dropped or swapped the table in).
    The same operator, with the same settings, so it is the same COPY; it runs inside the
    calling task, which Airflow's guard against nested operators is told."""
    from airflow.sdk.bases.operator import ExecutorSafeguard

    operator = staged_copy(
        task_id,
        plan=plan,
        schema=plan["target_schema"],
        table=plan["staging_table"],
        source_table="action",
        uploaded=uploaded,
    )
    token = ExecutorSafeguard.tracker.set(operator)
    try:
        operator.execute(context)
    finally:
        ExecutorSafeguard.tracker.reset(token)


def staged_copy(
    task_id: str, *, plan: Any, schema: Any, table: Any, source_table: str, uploaded: Any, **kwargs: Any
) -> ReportingS3ToRedshiftOperator:
    """COPY the parts of one upload (its manifest) into `schema.table`, REPLACE: delete and
    COPY in one transaction (the provider's S3ToRedshiftOperator). First it makes sure of what
    the COPY needs (tracking_sync.load.inputs): cleared on its own, it still runs."""
    return ReportingS3ToRedshiftOperator(
        task_id=task_id,
        plan=plan,
        part_uris=uploaded["part_uris"],
        export_task=f"export_{source_table}",
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
