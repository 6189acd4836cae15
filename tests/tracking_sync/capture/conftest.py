"""Fixtures of the change capture tests: a source database of the test's own on the stack's
PostgreSQL (wal_level=logical), with the capture's publication and slot."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg2
import pytest

from devstack.stack import create_source_schema
from tests.tracking_sync.capture.utils import CaptureSource
from tracking_sync.capture.decoding import DECODER_VARIABLE
from tracking_sync.capture.slot import slot_name


@pytest.fixture
def capture_source(stack) -> Iterator[CaptureSource]:
    """A database with action and action_type and nothing else: no publication, no slot yet.
    Afterwards its slots and the database are dropped, whatever the test left."""
    suffix = uuid.uuid4().hex[:8]
    database = f"capture_{suffix}"
    dsn = stack.postgres.create_database(database)
    create_source_schema(dsn)
    source = CaptureSource(dsn=dsn, database=database, slot=slot_name(f"test_{suffix}"))
    try:
        yield source
    finally:
        source.close()
        admin = psycopg2.connect(stack.postgres.dsn())
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                cursor.execute(
                    "select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = %s",
                    (database,),
                )
                cursor.execute(f'drop database "{database}" with (force)')
                cursor.execute("select count(*) from pg_replication_slots where database = %s", (database,))
                assert cursor.fetchone()[0] == 0
        finally:
            admin.close()


@pytest.fixture
def captured(capture_source) -> CaptureSource:
    """capture_source with the publication and the slot created (create_slot)."""
    capture_source.create_slot()
    return capture_source


@pytest.fixture(params=["compiled", "python"])
def decoder(request, monkeypatch) -> str:
    """The test runs with each decoder of tracking_sync.capture.decoding: the compiled one must
    be built (make install does it), and both must write the same rows."""
    monkeypatch.setenv(DECODER_VARIABLE, request.param)
    return request.param
