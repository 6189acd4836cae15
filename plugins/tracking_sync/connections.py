"""Connections to the three systems, from the Airflow connections (used by the task wrappers).

The stage functions take open connections/clients as arguments; only this module
knows they come from Airflow (postgres_source, aws_default, redshift_default).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from typing import Any

from tracking_sync.core.names import AWS_CONN_ID, REDSHIFT_CONN_ID, SOURCE_CONN_ID


def source_connection(conn_id: str = SOURCE_CONN_ID) -> Any:
    """A psycopg2 connection to the source.

    psycopg2 on purpose: its copy_expert streams COPY TO STDOUT into a file-like
    object fastest (PostgresHook would hand out psycopg 3 here, whose row iteration
    is client-bound: see the export figures in docs/benchmarks.md).
    """
    import psycopg2
    from airflow.sdk import BaseHook

    redact_task_logs()
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


def source_streaming_connection(conn_id: str = SOURCE_CONN_ID) -> Any:
    """A connection to the source through PostgresHook (psycopg 3 here), for validation:
    its server-side cursor streams a check's result as the server sends it."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    redact_task_logs()
    return PostgresHook(postgres_conn_id=conn_id).get_conn()


# S3 clients built in this process: {(process id, connection id, digest of the connection's
# fields): client}. See s3_client.
_S3_CLIENTS: dict[tuple[int, str, str], Any] = {}
_S3_CLIENTS_LOCK = threading.Lock()


def s3_client(conn_id: str = AWS_CONN_ID) -> Any:
    """The S3 client of the Airflow connection, built once per process and connection.

    S3Hook.get_conn() builds a new boto3 session each call, which loads the service's
    models again: 0.1-0.3 s a client, against 0.2 s for the transfer of a 1 M-row part
    (docs/benchmarks.md). The client is kept keyed on the process id (a forked child
    builds its own: a client's connection pool must not cross a fork), the connection id
    and a digest of the connection's fields (an edited connection, another endpoint or
    key, gets a new client; the secret itself is not kept in the key). Credentials that
    expire (an assumed role) are refreshed by the client itself. Where it pays: every
    task of a `dag.test()` run shares one process; under a scheduler each task is a
    process of its own and builds its client once, as before."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import BaseHook

    redact_task_logs()
    key = (os.getpid(), conn_id, _connection_digest(BaseHook.get_connection(conn_id)))
    with _S3_CLIENTS_LOCK:
        client = _S3_CLIENTS.get(key)
        if client is None:
            client = _S3_CLIENTS[key] = S3Hook(aws_conn_id=conn_id).get_conn()
    return client


def _connection_digest(connection: Any) -> str:
    """A digest of what a client is built from: the connection's type, host, login, secret
    and extra (its endpoint, region, role)."""
    fields = [
        str(getattr(connection, name, None))
        for name in ("conn_type", "host", "port", "login", "password", "extra")
    ]
    return hashlib.sha256("\0".join(fields).encode()).hexdigest()


def redshift_connection(conn_id: str = REDSHIFT_CONN_ID) -> Any:
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    redact_task_logs()
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

    redact_task_logs()
    if BaseHook.get_connection(conn_id).extra_dejson.get("role_arn"):
        return  # the COPY uses aws_iam_role=<arn>: no secret in the statement
    credentials = S3Hook(aws_conn_id=conn_id).get_credentials()
    for secret in (credentials.secret_key, credentials.token):
        if secret:
            # Credentials can come from elsewhere than the connection's password (an
            # assumed role's session token, the environment): register them explicitly.
            mask_secret(secret)


def redact_task_logs_callback(context: Any) -> None:
    """on_execute_callback for every task: redact before the task logs anything.

    The stage functions call redact_task_logs() themselves; this covers the tasks that
    are provider operators alone (the loads).
    """
    redact_task_logs()


def redact_task_logs() -> None:
    """Redact registered secrets in the task process's own log chain, before any output.

    mask_secret() (and every connection fetch, for its password and extra) registers
    secrets with the Task SDK's masker, but only some of the places a task's log line
    goes apply that masker:
    - under dag.test() / `airflow dags test` the task runs in-process and logs through
      the host's logging, which airflow-core configured without any redaction step
      (its structlog chain has only redact_jwt; core's own masker is a separate
      instance that the SDK's mask_secret() never reaches): secrets went out in clear;
    - under a real worker the supervisor redacts the task log file, but LocalExecutor
      also echoes every task line to the worker's stdout through core's logging
      (subprocess_logs_to_stdout), where the COPY's secret was printed in clear.
    Redacting in the task process, where the line is made, covers both: this adds the
    SDK's own redaction processor (airflow.sdk.log.mask_logs) to the process's chains,
    once. Redacting again in the supervisor is harmless.
    """
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
