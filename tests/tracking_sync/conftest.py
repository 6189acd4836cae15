"""Fixtures of the pipeline package tests: the real source PostgreSQL and S3 of the stack."""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from tracking_sync.core.settings import Settings


@pytest.fixture
def source(stack):
    """A connection to the source database, with `action` emptied before the test."""
    connection = psycopg2.connect(stack.source_dsn)
    with connection.cursor() as cursor:
        cursor.execute("truncate action")
    connection.commit()
    try:
        yield connection
    finally:
        connection.rollback()
        with connection.cursor() as cursor:
            cursor.execute("truncate action")
        connection.commit()
        connection.close()


@pytest.fixture
def settings(stack, tmp_path):
    """Settings with a prefix of the test's own, so tests never see each other's objects."""
    return Settings(
        bucket=stack.s3.bucket,
        prefix=f"test-{uuid.uuid4().hex[:8]}",
        scratch_dir=tmp_path / "staging",
        part_bytes=64 * 1024 * 1024,
    )


@pytest.fixture
def s3_client(stack):
    return stack.s3.client()
