"""The provider's S3ToRedshiftOperator, plus what on-call needs around it.

Not a re-implementation: execute() still builds and runs the provider's COPY. It adds
two things:
- the aws connection's secret key (and token) go to the Task SDK's secrets masker
  before the COPY statement, which carries them unless the connection has a role_arn,
  is logged, and connections.redact_task_logs() makes the task process's own log
  chain apply that masker (without it the statement was printed in clear under
  dag.test() and on a LocalExecutor worker's stdout);
- when the COPY fails, the rows of stl_load_errors for the run's files (file, line,
  column, reason) are logged and put in the error, instead of Redshift's bare
  "Check 'stl_load_errors' system table for details".
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator

from tracking_sync.connections import mask_aws_credentials, redshift_connection
from tracking_sync.exceptions import LoadFailed
from tracking_sync.load import format_load_errors, load_errors


class ReportingS3ToRedshiftOperator(S3ToRedshiftOperator):
    ui_color = "#99e699"

    def execute(self, context: Any) -> None:
        mask_aws_credentials(self.aws_conn_id)
        try:
            super().execute(context)
        except Exception as error:
            prefix = f"s3://{self.s3_bucket}/{self.s3_key.rsplit('/', 1)[0]}/"
            report = self._load_error_report(prefix)
            self.log.error("COPY into %s.%s failed; stl_load_errors:\n%s", self.schema, self.table, report)
            raise LoadFailed(
                f"COPY into {self.schema}.{self.table} from s3://{self.s3_bucket}/{self.s3_key} "
                f"failed ({error}); the target is unchanged (the COPY's transaction rolled "
                f"back).\n{report}\nFix the source rows or the export, then clear the export "
                "task of this run (upload and load follow)."
            ) from error

    def _load_error_report(self, prefix: str) -> str:
        try:
            connection = redshift_connection(self.redshift_conn_id)
            try:
                return format_load_errors(load_errors(connection, prefix))
            finally:
                connection.close()
        except Exception as error:  # the report is a courtesy; the COPY error is what counts
            return f"(could not read stl_load_errors: {error})"
