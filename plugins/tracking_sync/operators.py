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
- a COPY that rejected rows raises LoadRejected (a retry would meet the same files: it
  fails at once); one that found no manifest or part raises StagedFilesMissing, retried:
  files another run's cleanup or a lifecycle rule removed come back when the upload is
  cleared, and a transient S3 listing may heal; anything else (a dropped connection, a
  serializable isolation conflict) is raised as it is, and retried;
- a refused privilege or login, or S3 refusing the COPY's IAM role, raises AccessRefused
  naming the grant that fixes it (tracking_sync.oncall.refusals): it fails at once.
"""

from __future__ import annotations

import re
from typing import Any

from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator

from tracking_sync.connections import mask_aws_credentials, redshift_connection
from tracking_sync.core.errors import LoadRejected, StagedFilesMissing
from tracking_sync.load.copy import format_load_errors, load_errors
from tracking_sync.oncall.refusals import refused

# Redshift's words for a COPY whose manifest or part is missing (no stl_load_errors row).
_FILES_MISSING = re.compile(
    r"manifest file|manifest.*does not exist|NoSuchKey|no files found|S3 prefix .* does not exist",
    re.IGNORECASE,
)
# Anything else it cannot do on the same files and table (a relation that does not exist).
_CANNOT_LOAD = re.compile(r"does not exist", re.IGNORECASE)


class ReportingS3ToRedshiftOperator(S3ToRedshiftOperator):
    """`source_table`: the table whose rows the files hold, named in a rejected row's error
    (the COPY may load a staging table)."""

    ui_color = "#99e699"

    def __init__(self, *, source_table: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_table = source_table

    def execute(self, context: Any) -> None:
        mask_aws_credentials(self.aws_conn_id)
        try:
            super().execute(context)
        except Exception as error:
            translated = refused(error)  # a privilege, a login, the COPY role's S3 access
            if translated is not None:
                raise translated from error
            prefix = f"s3://{self.s3_bucket}/{self.s3_key.rsplit('/', 1)[0]}/"
            errors = self._load_errors(prefix)
            if not errors and _FILES_MISSING.search(str(error)):
                raise StagedFilesMissing(
                    f"COPY into {self.schema}.{self.table} found no manifest or part at "
                    f"s3://{self.s3_bucket}/{self.s3_key} ({str(error).strip().splitlines()[0]}): the "
                    "files were removed after the upload (a lifecycle rule, or an earlier attempt's "
                    "cleanup). Retried; if it persists, clear the upload and write_*_manifest tasks "
                    "of this run (the load follows)"
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
