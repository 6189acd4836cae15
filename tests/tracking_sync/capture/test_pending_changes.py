"""read_pending_changes against the real source PostgreSQL (its own database, a real pgoutput
slot): what the changes after an LSN touch, read without consuming the slot."""

from __future__ import annotations

import pytest

from tracking_sync.capture.errors import SlotAheadOfTarget
from tracking_sync.capture.pending import read_pending_changes
from tracking_sync.capture.slot import advance_slot, slot_status

pytestmark = pytest.mark.integration

ROW = "insert into action values ({id}, {user}, 's', 8, '{time}', 3, null, true, false, 'q')"


def insert(row_id: int, user: int = 7, time: str = "2025-03-01 12:00:00.25") -> str:
    return ROW.format(id=row_id, user=user, time=time)


def pending_after(captured, lsn: int, **options):
    return read_pending_changes(captured.reader, captured.slot, after_lsn=lsn, **options)


def test_the_changes_after_the_lsn_their_ids_users_and_days(captured):
    captured.execute(insert(1), insert(2), insert(3))
    applied = captured.now()  # what the target applied: the three inserts
    captured.execute(insert(4, user=8, time="2025-03-04 23:59:59.5"))
    captured.execute(
        "update action set user_profile_id = 9, action_time = '2025-03-05 00:00:01' where id = 1"
    )
    captured.execute("delete from action where id = 2")

    pending = pending_after(captured, applied)

    assert (pending.inserts, pending.updates, pending.deletes, pending.transactions) == (1, 1, 1, 3)
    assert pending.ids == {1, 2, 4}
    assert pending.old_ids == {1, 2}, "the target holds the old rows of the updated and deleted ids"
    # The new images' users and days; the delete carries its id only (REPLICA IDENTITY DEFAULT).
    assert pending.users == {8, 9}
    assert pending.days == {"2025-03-04", "2025-03-05"}
    assert pending.complete and pending.after_lsn == applied <= pending.upto_lsn
    assert pending.summary()["ids"] == 3


def test_the_slot_is_peeked_not_consumed(captured):
    start = captured.consistent_lsn
    captured.execute(insert(1))
    before = slot_status(captured.reader, captured.slot).confirmed_flush_lsn
    first = pending_after(captured, start)
    second = pending_after(captured, start)
    assert first.ids == second.ids == {1}
    assert slot_status(captured.reader, captured.slot).confirmed_flush_lsn == before
    rows, _ = captured.read(start, captured.now())
    assert len(rows) == 1, "the capture still reads the change"


def test_nothing_after_the_lsn_is_nothing_pending(captured):
    captured.execute(insert(1))
    pending = pending_after(captured, captured.now())
    assert (pending.changes, pending.ids, pending.users, pending.days) == (0, set(), set(), set())
    assert pending.complete


def test_a_changed_key_makes_both_ids_pending(captured):
    captured.execute(insert(1))
    applied = captured.now()
    captured.execute("update action set id = 10 where id = 1")
    pending = pending_after(captured, applied)
    assert pending.ids == {1, 10} and 1 in pending.old_ids


def test_replica_identity_full_gives_the_deleted_rows_user_and_day(captured):
    captured.execute(insert(1, user=5, time="2025-03-02 08:00:00"))
    captured.execute("alter table action replica identity full")
    applied = captured.now()
    captured.execute("delete from action where id = 1")
    pending = pending_after(captured, applied)
    assert (pending.ids, pending.users, pending.days) == ({1}, {5}, {"2025-03-02"})


def test_more_ids_than_the_cap_stop_the_reading_and_say_so(captured):
    applied = captured.consistent_lsn
    captured.execute(*(insert(i) for i in range(1, 6)))
    pending = pending_after(captured, applied, max_ids=3)
    assert not pending.complete
    assert pending.capped.startswith("more than 3 distinct ids are pending")
    assert len(pending.ids) == 4, "the reading stopped at the id past the cap"


def test_a_pending_truncate_is_said(captured):
    captured.execute(insert(1))
    applied = captured.now()
    captured.execute("truncate action")
    pending = pending_after(captured, applied)
    assert pending.truncated_at is not None and not pending.complete


def test_a_slot_advanced_past_the_lsn_cannot_say_what_is_pending(captured):
    start = captured.consistent_lsn
    captured.execute(insert(1))
    advance_slot(captured.reader, captured.slot, captured.now())
    with pytest.raises(SlotAheadOfTarget, match="which are pending cannot be said"):
        pending_after(captured, start)
