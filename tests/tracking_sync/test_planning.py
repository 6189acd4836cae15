"""What each run says of its slot, and when on-call hears of it (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.e2e.notifiers import RecordingNotifier
from tracking_sync.oncall.notifications import notify
from tracking_sync.planning import SlotReport

MIB = 1024 * 1024


def report(retained: int | None) -> SlotReport:
    return SlotReport(
        slot="tracking_sync_tracking",
        retained_bytes=retained,
        wal_status="extended",
        safe_wal_bytes=None,
        last_applied_at=datetime(2025, 3, 1, tzinfo=UTC),
        window_end=datetime(2025, 3, 3, tzinfo=UTC),
    )


def test_each_run_logs_the_wal_the_slot_keeps_and_how_old_the_capture_is():
    line = report(1536 * MIB).line()
    assert "retains 1536.0 MiB of WAL (extended)" in line
    assert "48.0 h before this run's" in line


def test_a_slot_over_the_limit_warns_on_call_and_one_under_it_does_not(monkeypatch):
    assert report(10 * MIB).warning(max_retained_bytes=20 * MIB) is None
    assert report(None).warning(max_retained_bytes=20 * MIB) is None
    warning = report(30 * MIB).warning(max_retained_bytes=20 * MIB)
    assert warning.startswith("TRACKING_SYNC SLOT slot tracking_sync_tracking: retains 30.0 MiB")
    assert (
        "over TRACKING_SYNC_SLOT_MAX_RETAINED_MB (20 MiB)" in warning and "max_slot_wal_keep_size" in warning
    )

    monkeypatch.setenv("TRACKING_SYNC_NOTIFIER", "tests.e2e.notifiers.RecordingNotifier")
    monkeypatch.setattr(RecordingNotifier, "sent", [])
    notify(warning)
    assert RecordingNotifier.sent == [warning], "the notifier rendered the line as its failure_summary"
