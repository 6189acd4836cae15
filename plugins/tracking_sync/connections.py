"""Connections to the three systems, from the Airflow connections (used by the task wrappers).

The stage functions take open connections/clients as arguments; only this module
knows they come from Airflow (postgres_source, aws_default, redshift_default).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from tracking_sync.config import AWS_CONN_ID, REDSHIFT_CONN_ID, SOURCE_CONN_ID


def source_connection(conn_id: str = SOURCE_CONN_ID) -> Any:
    """A psycopg2 connection to the source.

    psycopg2 on purpose: its copy_expert streams COPY TO STDOUT into a file-like
    object fastest (PostgresHook would hand out psycopg 3 here, whose row iteration
    is client-bound at ~0.7 M rows/s against 1.3 M).
    """
    import psycopg2
    from airflow.sdk import BaseHook

    redact_in_process_task_logs()
    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson
    options = {k: v for k, v in extra.items() if k in ("sslmode", "sslrootcert", "options")}
    return psycopg2.connect(
        host=conn.host,
        port=conn.port or 5432,
        user=conn.login,
        password=conn.password,
        dbname=conn.schema,
        application_name="tracking_sync export",
        **options,
    )


def s3_client(conn_id: str = AWS_CONN_ID) -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    redact_in_process_task_logs()
    return S3Hook(aws_conn_id=conn_id).get_conn()


def redshift_connection(conn_id: str = REDSHIFT_CONN_ID) -> Any:
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    redact_in_process_task_logs()
    connection = RedshiftSQLHook(redshift_conn_id=conn_id).get_conn()
    connection.autocommit = False
    return connection


def mask_aws_credentials(conn_id: str = AWS_CONN_ID) -> None:
    """Make sure the aws connection's secret key and token are redacted in the task log.

    S3ToRedshiftOperator writes them into the COPY statement, which common-sql's
    DbApiHook logs ("Running statement: ..."), unless the connection has a role_arn
    (then the COPY carries `aws_iam_role=<arn>` and no secret: the production setup).
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import BaseHook
    from airflow.sdk.log import mask_secret

    redact_in_process_task_logs()
    if BaseHook.get_connection(conn_id).extra_dejson.get("role_arn"):
        return  # the COPY uses aws_iam_role=<arn>: no secret in the statement
    credentials = S3Hook(aws_conn_id=conn_id).get_credentials()
    for secret in (credentials.secret_key, credentials.token):
        if secret:
            # Credentials can come from elsewhere than the connection's password (an
            # assumed role's session token, the environment): register them explicitly.
            mask_secret(secret)


def redact_in_process_task_logs() -> None:
    """Under dag.test() / `airflow dags test`, apply the Task SDK's secrets masker to the log.

    mask_secret() (and every connection fetch, for its password and extra) registers
    secrets with the Task SDK's masker. A real worker's supervisor redacts the task's
    log lines with that masker. A task run in-process has no supervisor process: it
    logs through the host's logging, which airflow-core configured with no redaction
    step at all (its structlog chain has only redact_jwt, and core's own masker is a
    different instance that the SDK's mask_secret() never reaches). So secrets went
    out in clear. This adds the SDK's redaction processor to the host's chains, once;
    it changes nothing for a task under a real worker.
    """
    if not _runs_in_process():
        return
    import structlog
    from airflow.sdk.log import mask_logs

    processors = structlog.get_config()["processors"]
    if mask_logs not in processors:
        if isinstance(processors, list):
            # In place, before the renderer: loggers already bound (and cached) use
            # this very list, so they redact too.
            processors.insert(len(processors) - 1, mask_logs)
        else:
            structlog.configure(processors=[*processors[:-1], mask_logs, processors[-1]])
    # Records of plain stdlib loggers (drivers, boto) render through the root handlers.
    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        if (
            isinstance(formatter, structlog.stdlib.ProcessorFormatter)
            and formatter.processors
            and mask_logs not in formatter.processors
        ):
            chain = list(formatter.processors)
            formatter.processors = [*chain[:-1], mask_logs, chain[-1]]


def _runs_in_process() -> bool:
    """True when the task runs inside the process that runs the DAG (dag.test())."""
    supervisor = sys.modules.get("airflow.sdk.execution_time.supervisor")
    task_runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    if supervisor is None or task_runner is None:
        return False
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    return isinstance(comms, supervisor.InProcessSupervisorComms)
