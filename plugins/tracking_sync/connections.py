"""Connections to the three systems, from the Airflow connections (used by the task wrappers).

The stage functions take open connections/clients as arguments; only this module
knows they come from Airflow (postgres_source, aws_default, redshift_default).
"""

from __future__ import annotations

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

    return S3Hook(aws_conn_id=conn_id).get_conn()


def redshift_connection(conn_id: str = REDSHIFT_CONN_ID) -> Any:
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    connection = RedshiftSQLHook(redshift_conn_id=conn_id).get_conn()
    connection.autocommit = False
    return connection


def mask_aws_credentials(conn_id: str = AWS_CONN_ID) -> None:
    """Register the aws connection's secret key and token with Airflow's secrets masker.

    S3ToRedshiftOperator writes them into the COPY statement it logs when the
    connection has no role_arn; under a real worker they are masked, under
    dag.test() they were not. Masking them before the COPY runs covers both.
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import BaseHook
    from airflow.sdk.log import mask_secret

    if BaseHook.get_connection(conn_id).extra_dejson.get("role_arn"):
        return  # the COPY uses aws_iam_role=<arn>: no secret in the statement
    credentials = S3Hook(aws_conn_id=conn_id).get_credentials()
    for secret in (credentials.secret_key, credentials.token):
        if secret:
            mask_secret(secret)
