"""The capture's slot and publication on the real source PostgreSQL 15: creation, status,
advance, drop, and a slot invalidated by max_slot_wal_keep_size."""

from __future__ import annotations

import time

import psycopg2
import pytest

from devstack.postgres import LocalPostgres
from devstack.stack import SOURCE_DATABASE, create_source_schema
from tests.tracking_sync.capture.utils import CaptureSource
from tracking_sync.capture.errors import SlotLost, SlotMissing
from tracking_sync.capture.preflight import check_source
from tracking_sync.capture.slot import (
    PUBLICATION,
    advance_slot,
    create_slot,
    drop_slot,
    ensure_publication,
    require_slot,
    slot_name,
    slot_status,
)


def test_slot_names_follow_the_target_schema():
    assert slot_name("tracking") == "tracking_sync_tracking"
    with pytest.raises(ValueError, match="at most 49"):
        slot_name("x" * 50)
    with pytest.raises(ValueError, match="lower-case"):
        slot_name("Tracking")


@pytest.mark.integration
def test_create_slot_creates_the_publication_and_the_slot_once(capture_source):
    created = create_slot(capture_source.reader, capture_source.slot)
    assert created.created and created.consistent_lsn > 0
    again = create_slot(capture_source.reader, capture_source.slot)
    assert not again.created and again.consistent_lsn == created.consistent_lsn
    assert capture_source.fetch(
        "select tablename::text from pg_publication_tables where pubname = %s", (PUBLICATION,)
    ) == [("action",)]
    status = require_slot(capture_source.reader, capture_source.slot)
    assert (status.plugin, status.slot_type, status.database) == (
        "pgoutput",
        "logical",
        capture_source.database,
    )
    assert status.wal_status == "reserved" and not status.active
    assert status.confirmed_flush_lsn == created.consistent_lsn
    assert status.restart_lsn <= status.confirmed_flush_lsn
    assert status.retained_wal_bytes >= 0
    assert status.safe_wal_size is None  # max_slot_wal_keep_size = -1: unlimited


@pytest.mark.integration
def test_an_existing_publication_without_action_gets_it(capture_source):
    capture_source.execute(f"create publication {PUBLICATION}")
    assert ensure_publication(capture_source.reader)
    assert not ensure_publication(capture_source.reader)
    assert capture_source.fetch(
        "select count(*) from pg_publication_tables where pubname = %s", (PUBLICATION,)
    ) == [(1,)]


@pytest.mark.integration
def test_retained_wal_grows_with_changes_and_advance_releases_it(captured):
    captured.execute(
        "insert into action select i, 1, 's', 1, now(), null, null, null, false, repeat('q', 500) "
        "from generate_series(1, 2000) as i"
    )
    before = require_slot(captured.reader, captured.slot)
    assert before.retained_wal_bytes > 1_000_000
    upto = captured.now()

    assert advance_slot(captured.reader, captured.slot, upto) == upto
    assert advance_slot(captured.reader, captured.slot, upto) == upto  # a retry changes nothing
    assert advance_slot(captured.reader, captured.slot, captured.consistent_lsn) == upto  # never backwards
    assert require_slot(captured.reader, captured.slot).confirmed_flush_lsn == upto
    # restart_lsn (what WAL the slot keeps) follows at the next running-transactions record
    # the decoding passes: logged by each checkpoint, and by the bgwriter every 15 s.
    captured.execute("checkpoint")
    captured.execute("insert into action values (0, 1, 's', 1, now(), null, null, null, false, null)")
    later = captured.now()
    advance_slot(captured.reader, captured.slot, later)
    after = require_slot(captured.reader, captured.slot)
    assert after.restart_lsn > before.restart_lsn
    assert after.retained_wal_bytes < before.retained_wal_bytes


@pytest.mark.integration
def test_drop_slot_and_the_missing_slot_error(captured):
    assert drop_slot(captured.reader, captured.slot)
    assert not drop_slot(captured.reader, captured.slot)
    assert slot_status(captured.reader, captured.slot) is None
    with pytest.raises(SlotMissing, match=f"{captured.slot} does not exist.*mode=full_refresh"):
        require_slot(captured.reader, captured.slot)


@pytest.fixture
def small_wal_keep_source():
    """A throwaway PostgreSQL of the test's own (ALTER SYSTEM changes it) with a captured
    source, and max_slot_wal_keep_size = 1MB."""
    postgres = LocalPostgres().start()
    try:
        dsn = postgres.create_database(SOURCE_DATABASE)
        create_source_schema(dsn)
        source = CaptureSource(dsn=dsn, database=SOURCE_DATABASE, slot=slot_name("lost"))
        source.create_slot()
        postgres.execute("alter system set max_slot_wal_keep_size = '1MB'")
        postgres.execute("select pg_reload_conf()")
        yield source
        source.close()
    finally:
        postgres.stop()


@pytest.mark.integration
def test_a_slot_that_falls_behind_max_slot_wal_keep_size_is_lost(small_wal_keep_source):
    """PostgreSQL 15 invalidates it at the checkpoint after its WAL passes the limit:
    wal_status 'lost', restart_lsn and safe_wal_size gone; the capture names the repair."""
    source = small_wal_keep_source
    deadline = time.monotonic() + 30
    while (status := slot_status(source.reader, source.slot)).safe_wal_size is None:  # the reload
        assert time.monotonic() < deadline, "max_slot_wal_keep_size was not reloaded"
        time.sleep(0.05)
    assert status.wal_status == "reserved" and 0 < status.safe_wal_size <= 16 * 1024 * 1024
    seen = []
    for batch in range(20):
        source.execute(
            "insert into action select i, 1, 's', 1, now(), null, null, null, false, null "
            f"from generate_series({batch * 1000 + 1}, {batch * 1000 + 1000}) as i",
            "select pg_switch_wal()",
        )
        source.execute("checkpoint")
        status = slot_status(source.reader, source.slot)
        seen.append(status.wal_status)
        if status.is_lost:
            break
    assert status.is_lost, f"the slot was never invalidated: {seen}"
    assert status.restart_lsn is None and status.safe_wal_size is None and status.retained_wal_bytes is None

    with pytest.raises(SlotLost, match="wal_status = 'lost'.*pg_drop_replication_slot.*mode=full_refresh"):
        require_slot(source.reader, source.slot)
    with pytest.raises(SlotLost):
        source.read(source.consistent_lsn, source.now())
    # What PostgreSQL itself says when the slot is peeked.
    with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState, match="can no longer get changes"):
        source.peek_messages()
    preflight = check_source(source.reader, slot=source.slot)
    assert [finding.setting for finding in preflight.problems] == [
        f"replication slot {source.slot} wal_status"
    ]
    assert "lost" in str(preflight.problems[0]) and "mode=full_refresh" in str(preflight.problems[0])
