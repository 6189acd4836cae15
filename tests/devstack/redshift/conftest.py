"""Fixtures of the Redshift fidelity suite: clients of the stand-in and a schema per test.

Every test here drives the stand-in through the real clients (redshift_connector
as the provider uses it, psycopg2 where the simple protocol matters, psql) and
names the Redshift documentation page (docs.aws.amazon.com/redshift/latest/dg/<page>)
whose behaviour it reproduces. unit/ tests the same pieces below the socket (no
server, no stack): the framer, the COPY parser, converters, rewrites, error wording.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import uuid

import pytest


@pytest.fixture(scope="session")
def redshift(stack):
    assert stack.redshift is not None, "the stack started without the Redshift stand-in"
    return stack.redshift


@pytest.fixture
def rs_conn(redshift, schema):  # after `schema`, so closed before the schema is dropped
    """A redshift_connector connection, as RedshiftSQLHook makes one ({"ssl": false})."""
    import redshift_connector

    conn = redshift_connector.connect(**redshift.connect_kwargs())
    yield conn
    conn.close()


@pytest.fixture
def pg_conn(redshift, schema):
    """A psycopg2 connection to the stand-in (simple query protocol)."""
    import psycopg2

    conn = psycopg2.connect(redshift.dsn())
    yield conn
    conn.close()


@pytest.fixture
def schema(redshift):
    """A schema of this test's own, dropped afterwards. It belongs to the pipeline's user
    (devstack.grants.REDSHIFT_USER: what the hooks and operators connect as, through
    stack_env), and the tables the administrator's connections create in it are granted
    to that user too."""
    import psycopg2

    from devstack.grants import REDSHIFT_USER

    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(redshift.dsn())
    admin.autocommit = True
    admin.cursor().execute(f"create schema {name} authorization {REDSHIFT_USER}")
    admin.cursor().execute(
        f"alter default privileges for role {redshift.user} in schema {name} grant all on tables to {REDSHIFT_USER}"
    )
    yield name
    admin.cursor().execute(f"drop schema {name} cascade")
    admin.close()


@pytest.fixture(scope="session")
def s3(stack):
    return stack.s3


class S3Files:
    """Writes test input under a prefix of its own in the local S3 bucket."""

    def __init__(self, s3):
        self.client = s3.client()
        self.bucket = s3.bucket
        self.prefix = f"rs-fidelity/{uuid.uuid4().hex[:10]}"
        self.access_key_id = s3.access_key_id
        self.secret_access_key = s3.secret_access_key

    def put(self, name: str, data: bytes | str, compression: str | None = None) -> str:
        body = data.encode() if isinstance(data, str) else data
        if compression == "gzip":
            body = gzip.compress(body)
        elif compression == "bzip2":
            body = bz2.compress(body)
        elif compression == "zstd":
            import zstandard

            body = zstandard.ZstdCompressor().compress(body)
        key = f"{self.prefix}/{name}"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=io.BytesIO(body).getvalue())
        return f"s3://{self.bucket}/{key}"

    def put_manifest(self, name: str, entries: list[tuple[str, bool]]) -> str:
        manifest = {"entries": [{"url": url, "mandatory": mandatory} for url, mandatory in entries]}
        return self.put(name, json.dumps(manifest))

    def url(self, name: str = "") -> str:
        return f"s3://{self.bucket}/{self.prefix}/{name}"

    @property
    def keys_clause(self) -> str:
        return f"access_key_id '{self.access_key_id}' secret_access_key '{self.secret_access_key}'"


@pytest.fixture
def files(s3):
    return S3Files(s3)
