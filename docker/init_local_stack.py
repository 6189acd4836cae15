"""One-shot set-up of the local stack in docker-compose.yaml (the `stack-init` service).

Creates the source schema and loads the demo data (only when `action` is empty, so a restart keeps
what is there), creates the database behind the Redshift stand-in with its Redshift catalog, the
pipeline's roles from the grant scripts (devstack.grants: the source role and the Redshift user
that the compose file's Airflow connections use), and the staging bucket in the S3 stand-in. Everything comes from the environment the compose file sets:

    SOURCE_DSN            the source database (postgresql://.../tracking)
    REDSHIFT_BACKEND_DSN  the database the stand-in fronts (postgresql://.../dev)
    S3_ENDPOINT_URL, TRACKING_SYNC_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION
    DEMO_ROWS             demo actions to generate (default 300000)
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlparse, urlunparse

import boto3
import psycopg2

from devstack import demo_data
from devstack.grants import REDSHIFT_USER, SOURCE_ROLE, create_redshift_user, create_source_role
from devstack.redshift import install_compat_catalog
from devstack.stack import (
    REDSHIFT_USER_PASSWORD,
    SOURCE_DATABASE,
    SOURCE_ROLE_PASSWORD,
    create_source_schema,
)


def say(message: str) -> None:
    print(f"stack-init: {message}", flush=True)


def load_demo_data(source_dsn: str, rows: int) -> None:
    create_source_schema(source_dsn)
    with psycopg2.connect(source_dsn) as conn, conn.cursor() as cur:
        cur.execute("select exists (select from action)")
        (has_rows,) = cur.fetchone()
    if has_rows:
        say("the source already has actions; demo data left as it is")
        return
    started = time.perf_counter()
    count = demo_data.generate(source_dsn, rows=rows)
    say(f"generated {count:,} demo actions in {time.perf_counter() - started:.1f}s")


def create_redshift_backend(backend_dsn: str) -> None:
    url = urlparse(backend_dsn)
    database = url.path.lstrip("/")
    conn = psycopg2.connect(urlunparse(url._replace(path="/postgres")))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(f'create database "{database}"')
    finally:
        conn.close()
    install_compat_catalog(backend_dsn)
    say(f"Redshift stand-in's database {database} ready")


def create_bucket(endpoint_url: str, bucket: str) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint_url)
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
    say(f"bucket s3://{bucket} ready at {endpoint_url}")


def main() -> None:
    load_demo_data(os.environ["SOURCE_DSN"], int(os.environ.get("DEMO_ROWS", demo_data.DEFAULT_ROWS)))
    create_source_role(os.environ["SOURCE_DSN"], SOURCE_ROLE, SOURCE_ROLE_PASSWORD, SOURCE_DATABASE)
    say(f"source role {SOURCE_ROLE} granted include/sql/postgres/grants/source_role.sql")
    create_redshift_backend(os.environ["REDSHIFT_BACKEND_DSN"])
    backend = urlparse(os.environ["REDSHIFT_BACKEND_DSN"]).path.lstrip("/")
    create_redshift_user(os.environ["REDSHIFT_BACKEND_DSN"], REDSHIFT_USER, REDSHIFT_USER_PASSWORD, backend)
    say(f"Redshift user {REDSHIFT_USER} granted include/sql/redshift/grants/pipeline_user.sql")
    create_bucket(os.environ["S3_ENDPOINT_URL"], os.environ["TRACKING_SYNC_BUCKET"])


if __name__ == "__main__":
    main()
