"""read_changes against the real source PostgreSQL 15 (its own database, a real pgoutput slot):
every kind of change, unchanged TOAST, the CSV dialect of export, the final_lsn window."""

from __future__ import annotations

import io
from pathlib import Path

import psycopg2
import pytest
import zstandard

from tests.pipeline_helpers import (
    ACTION_COLUMNS,
    assert_same_rows,
    fetch_rows,
    insert_actions,
    tricky_actions,
)
from tests.tracking_sync.capture.utils import (
    TOASTED_QUERY_SQL,
    RowList,
    action_fields,
    parse_rows,
    reference_fields,
)
from tracking_sync.capture.batch import _write_batch, read_changes
from tracking_sync.capture.errors import SlotAheadOfTarget, SlotMissing, SourceTableChanged, TruncateCaptured
from tracking_sync.capture.pgoutput import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    Message,
    Origin,
    Relation,
    Truncate,
    Type,
    Update,
    decode_message,
)
from tracking_sync.capture.rows import CHANGE_COLUMNS, ActionImages
from tracking_sync.capture.slot import advance_slot, copy_changes, slot_status, wal_position
from tracking_sync.core.lsn import format_lsn
from tracking_sync.core.plan import RunSlice
from tracking_sync.core.tables import ACTION
from tracking_sync.extract.export import export_table
from tracking_sync.extract.parts import PartWriter

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("decoder")]

INSERT_ROW = "insert into action values ({id}, 7, 's-{id}', 8, '2025-03-01 12:00:00.25', 3, null, true, false, 'q{id}')"


def insert(*ids: int) -> list[str]:
    return [INSERT_ROW.format(id=i) for i in ids]


def test_inserts_updates_and_deletes_become_rows_in_commit_order(captured):
    captured.execute(*insert(1, 2, 3))
    captured.execute("update action set course_id = 4, query = 'q1 v2' where id = 1")
    captured.execute("delete from action where id = 2")
    upto = captured.now()

    rows, result = captured.read(captured.consistent_lsn, upto)

    changes = parse_rows(rows)
    assert [(c["change_seq"], c["change_kind"], c["id"]) for c in changes] == [
        ("1", "I", "1"),
        ("2", "I", "2"),
        ("3", "I", "3"),
        ("4", "U", "1"),
        ("5", "D", "2"),
    ]
    assert (result.inserts, result.updates, result.deletes, result.rows) == (3, 1, 1, 5)
    assert (result.transactions, result.skipped_transactions, result.touched_ids) == (3, 0, 3)
    assert result.bytes == sum(len(row) for row in rows)
    assert changes[3]["course_id"] == "4" and changes[3]["query"] == "q1 v2"
    # A delete under REPLICA IDENTITY DEFAULT carries the key only.
    assert changes[4]["id"] == "2"
    assert all(changes[4][name] == "\\N" for name in ACTION.column_names if name != "id")
    assert changes[4]["query_is_marker"] == "f" and changes[4]["query_unchanged"] == "f"
    # One transaction, one xid and commit LSN; LSNs grow with the commits, inside the window.
    lsns = [int(c["change_commit_lsn"]) for c in changes]
    assert lsns[0] == lsns[1] == lsns[2] < lsns[3] < lsns[4] < upto
    assert lsns[0] >= captured.consistent_lsn
    assert len({c["change_xid"] for c in changes}) == 3


def test_change_xid_is_the_transactions_xid8(captured):
    captured.execute(*insert(1))
    # The xid8 of a committed transaction, from the source itself: a second, known transaction.
    writer = captured.connect(synchronous_commit="on")
    with writer.cursor() as cursor:
        cursor.execute(INSERT_ROW.format(id=2))
        cursor.execute("select pg_current_xact_id()::text::bigint")
        (xid8,) = cursor.fetchone()
    writer.commit()

    rows, _ = captured.read(captured.consistent_lsn, captured.now())

    assert parse_rows(rows)[1]["change_xid"] == str(xid8)


def test_a_transaction_of_several_changes_keeps_their_order(captured):
    captured.execute(*insert(1))
    captured.execute(
        *insert(10, 11),
        "update action set query = 'ten' where id = 10",
        "delete from action where id = 11",
        "update action set user_profile_id = 99 where id = 1",
        "delete from action where id = 10",
    )
    rows, result = captured.read(captured.consistent_lsn, captured.now())

    changes = parse_rows(rows)[1:]
    assert [(c["change_kind"], c["id"]) for c in changes] == [
        ("I", "10"),
        ("I", "11"),
        ("U", "10"),
        ("D", "11"),
        ("U", "1"),
        ("D", "10"),
    ]
    assert [int(c["change_seq"]) for c in changes] == list(range(2, 8))
    assert len({(c["change_xid"], c["change_commit_lsn"]) for c in changes}) == 1
    assert changes[2]["query"] == "ten" and changes[4]["user_profile_id"] == "99"
    assert (result.transactions, result.touched_ids) == (2, 3)


def test_an_update_that_leaves_a_toasted_query_unchanged_says_so(captured):
    captured.execute(INSERT_ROW.format(id=1).replace("'q1'", TOASTED_QUERY_SQL))
    captured.execute("update action set course_id = 5 where id = 1")  # query not touched
    captured.execute("update action set query = query || '!' where id = 1")  # query changed
    [(stored,)] = captured.fetch(
        "select pg_relation_size(reltoastrelid) > 0 from pg_class where relname = 'action'"
    )
    assert stored  # out of line, in action's TOAST table

    # What pgoutput itself sends: the 'u' marker, no value.
    updates = [record for record in captured.peek_messages() if isinstance(record, Update)]
    assert updates[0].old is None and updates[0].new[-1] is UNCHANGED

    rows, _ = captured.read(captured.consistent_lsn, captured.now())
    inserted, unchanged, changed = parse_rows(rows)
    assert len(inserted["query"]) == 40_000 and inserted["query_unchanged"] == "f"
    assert unchanged["course_id"] == "5"
    assert (unchanged["query"], unchanged["query_is_marker"], unchanged["query_unchanged"]) == (
        "\\N",
        "f",
        "t",
    )
    assert rows[1].endswith(b",\\N,f,t\n")  # unquoted: NULL, to be resolved on the target
    assert changed["query"] == inserted["query"] + "!" and changed["query_unchanged"] == "f"


def test_replica_identity_full_sends_the_old_row_and_still_leaves_the_new_query_unsent(captured):
    """PostgreSQL 15: under REPLICA IDENTITY FULL the old row carries the whole (detoasted)
    query, and the new tuple still marks it 'u'; the capture takes it from the old row."""
    captured.execute(INSERT_ROW.format(id=1).replace("'q1'", TOASTED_QUERY_SQL))
    captured.execute("alter table action replica identity full")
    captured.execute("update action set course_id = 6 where id = 1")
    captured.execute("delete from action where id = 1")

    messages = captured.peek_messages()
    relations = [record for record in messages if isinstance(record, Relation)]
    assert relations[-1].replica_identity == "f" and all(column.is_key for column in relations[-1].columns)
    [update] = [record for record in messages if isinstance(record, Update)]
    assert update.old_kind == "O" and len(update.old[-1]) == 40_000
    assert update.new[-1] is UNCHANGED
    [delete] = [record for record in messages if isinstance(record, Delete)]
    assert delete.old_kind == "O" and len(delete.old[-1]) == 40_000

    rows, _ = captured.read(captured.consistent_lsn, captured.now())
    inserted, updated, deleted = parse_rows(rows)
    assert updated["query"] == inserted["query"] and updated["query_unchanged"] == "f"
    assert updated["course_id"] == "6"
    # A delete under FULL carries the old image, every column.
    assert deleted["change_kind"] == "D"
    assert [deleted[name] for name in ACTION.column_names] == [updated[name] for name in ACTION.column_names]


def test_an_update_moving_action_time_to_another_day_carries_the_new_time(captured):
    captured.execute(*insert(1))
    captured.execute("update action set action_time = '2025-03-02 00:00:00.000001' where id = 1")
    captured.execute("update action set action_time = '2025-02-28 23:59:59' where id = 1")
    rows, _ = captured.read(captured.consistent_lsn, captured.now())
    times = [change["action_time"] for change in parse_rows(rows)]
    assert times == ["2025-03-01 12:00:00.25+00", "2025-03-02 00:00:00.000001+00", "2025-02-28 23:59:59+00"]


def test_a_changed_key_deletes_the_old_id(captured):
    captured.execute(*insert(1))
    captured.execute("update action set id = 1001 where id = 1")
    rows, result = captured.read(captured.consistent_lsn, captured.now())
    changes = parse_rows(rows)
    assert [(c["change_kind"], c["id"]) for c in changes] == [("I", "1"), ("D", "1"), ("U", "1001")]
    assert changes[2]["query"] == "q1"
    assert (result.deletes, result.updates, result.touched_ids) == (1, 1, 2)


def test_the_action_columns_are_written_exactly_as_export_writes_them(captured, tmp_path):
    """The same rows through export_table (COPY) and through the capture: byte for byte."""
    rows = tricky_actions()
    insert_actions(captured.connect(synchronous_commit="on"), rows)
    exported = export_table(
        captured.reader, ACTION, RunSlice(full_refresh=True), tmp_path, part_bytes=1 << 30
    )
    export_bytes = b"".join(read_part(tmp_path / part.name) for part in exported.parts)

    change_rows, _ = captured.read(captured.consistent_lsn, captured.now())

    assert len(change_rows) == len(rows)
    assert b"".join(action_fields(row) + b"\n" for row in change_rows) == export_bytes


def test_change_parts_load_back_into_postgres_with_exports_copy_options(captured, tmp_path):
    """Written through export's PartWriter (zstd parts), read back with COPY (FORMAT csv,
    NULL '\\N'): every row, and NULL, '' and the text \\N kept apart by the flag."""
    insert_actions(captured.connect(synchronous_commit="on"), tricky_actions())
    inserted = fetch_rows(captured.reader, f"select {ACTION_COLUMNS} from action order by id")
    captured.execute("update action set query = null where id = 1", "delete from action where id = 2")
    writer = PartWriter(tmp_path, part_bytes=4096)
    result = read_changes(
        captured.reader, captured.slot, captured.publication, captured.consistent_lsn, captured.now(), writer
    )
    parts = writer.close()
    assert len(parts) > 1 and sum(part.rows for part in parts) == result.rows == len(inserted) + 2

    loaded = captured.connect()
    with loaded.cursor() as cursor:
        columns = ", ".join(f"{column.name} {column.redshift_type}" for column in CHANGE_COLUMNS)
        cursor.execute(f"create temp table change_back ({columns})")
        for part in parts:
            cursor.copy_expert(
                "copy change_back from stdin with (format csv, null '\\N')",
                io.BytesIO(read_part(tmp_path / part.name)),
            )
    as_in_source = ACTION_COLUMNS.replace("action_time", "action_time at time zone 'UTC'").replace(
        "query", "case when query_is_marker then chr(92) || 'N' else query end"
    )
    back = fetch_rows(loaded, f"select {as_in_source} from change_back where change_kind = 'I' order by id")
    assert_same_rows(inserted, back, "inserted rows")
    updated = fetch_rows(
        loaded, "select query, query_is_marker, query_unchanged from change_back where change_kind = 'U'"
    )
    assert updated == [(None, False, False)]  # a real NULL, not the text \\N
    deleted = fetch_rows(
        loaded, "select id, user_profile_id, query_is_marker from change_back where change_kind = 'D'"
    )
    assert deleted == [(2, None, False)]


def read_part(path: Path) -> bytes:
    with open(path, "rb") as compressed:
        return zstandard.ZstdDecompressor().stream_reader(compressed).read()


def test_the_batchs_tuple_formatting_agrees_with_the_decoder(captured):
    """ActionImages.format_tuple reads tuples straight from the messages; the decoder's
    records, written the plain way, must give the same fields for every tuple of a stream
    of tricky rows, updates (old key, old row), unsent TOAST and deletes."""
    insert_actions(captured.connect(synchronous_commit="on"), tricky_actions())
    captured.execute(
        "update action set query = query || '!', session_id = '\\N' where id % 2 = 0",
        "update action set id = id + 100 where id = 3",
        "delete from action where id in (1, 4)",
    )
    captured.execute("alter table action replica identity full")
    captured.execute("update action set course_id = 1 where id in (5, 9)", "delete from action where id = 6")
    upto = captured.now()
    raw = [
        bytes(data)
        for (data,) in captured.fetch(
            "select data from pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, null, 'proto_version', '1', "
            "'publication_names', %s)",
            (captured.slot, format_lsn(upto), captured.publication),
        )
    ]
    checked = 0
    for data in raw:
        record = decode_message(data)
        if isinstance(record, Relation):
            relation, images = record, ActionImages(record)
            continue
        tuples = {Insert: ["new"], Delete: ["old"], Update: ["old", "new"]}.get(type(record), [])
        pos = 6  # after the type, the relation OID and the tuple's K, O or N
        for name in tuples:
            values = getattr(record, name)
            if values is None:  # an update without its old key: the new tuple is first
                continue
            fields, end, _ = images.format_tuple(data, pos)
            assert fields == reference_fields(relation, values)
            pos = end + 1
            checked += 1
    assert checked > 2 * len(tricky_actions())


def test_truncate_stops_the_capture_and_names_the_full_refresh(captured):
    captured.execute(*insert(1))
    captured.execute("truncate action")
    with pytest.raises(TruncateCaptured, match="mode=full_refresh"):
        captured.read(captured.consistent_lsn, captured.now())
    assert any(isinstance(record, Truncate) for record in captured.peek_messages())


def test_a_truncate_already_applied_is_skipped_with_its_transaction(captured):
    captured.execute(*insert(1))
    captured.execute("truncate action")
    after_truncate = captured.now()
    captured.execute(*insert(2))
    rows, result = captured.read(after_truncate, captured.now())
    assert [change["id"] for change in parse_rows(rows)] == ["2"]
    assert result.skipped_transactions == 2


def test_the_final_lsn_window_rereads_the_same_batch_and_skips_what_was_applied(captured):
    captured.execute(*insert(1, 2))
    captured.execute("update action set query = 'two' where id = 2")
    first_upto = captured.now()
    captured.execute(*insert(3))
    captured.execute("delete from action where id = 1")
    second_upto = captured.now()
    captured.execute(*insert(4))  # after both windows

    first, first_result = captured.read(captured.consistent_lsn, first_upto)
    again, _ = captured.read(captured.consistent_lsn, first_upto)
    assert again == first  # a retried capture writes the same rows, byte for byte
    assert [(c["change_kind"], c["id"]) for c in parse_rows(first)] == [("I", "1"), ("I", "2"), ("U", "2")]
    assert first_result.transactions == 2

    # The next batch before the slot was advanced (the advance was lost): the applied
    # transactions are peeked again and skipped, and the action Relation message, sent in
    # the first (skipped) transaction, still describes the rows of the next.
    second, second_result = captured.read(first_upto, second_upto)
    assert [(c["change_kind"], c["id"]) for c in parse_rows(second)] == [("I", "3"), ("D", "1")]
    assert (second_result.transactions, second_result.skipped_transactions) == (2, 2)
    assert [int(c["change_seq"]) for c in parse_rows(second)] == [1, 2]  # seq restarts per batch

    # After the advance, the same batch again: the same rows, nothing left to skip.
    advance_slot(captured.reader, captured.slot, first_upto)
    advanced, advanced_result = captured.read(first_upto, second_upto)
    assert advanced == second
    assert advanced_result.skipped_transactions == 0


def test_a_slot_advanced_past_the_applied_lsn_is_refused(captured):
    captured.execute(*insert(1))
    upto = captured.now()
    advance_slot(captured.reader, captured.slot, upto)
    with pytest.raises(SlotAheadOfTarget, match="mode=full_refresh"):
        captured.read(captured.consistent_lsn, upto)


def test_a_missing_slot_names_the_bootstrap(capture_source):
    with pytest.raises(SlotMissing, match="mode=full_refresh"):
        capture_source.read(0, 1)


def test_the_real_binary_copy_written_in_any_pieces_gives_the_same_rows(captured):
    """The peek's binary COPY as PostgreSQL 15 sends it (header with the first tuple, the
    trailer alone), kept whole, then written to the decoder in pieces of 1 to 97 bytes: the
    same rows as read_changes gives."""
    captured.execute(*insert(*range(1, 40)))
    captured.execute("update action set query = query || ' v2' where id % 3 = 0")
    upto = captured.now()
    whole, result = captured.read(captured.consistent_lsn, upto)
    assert len(whole) == 39 + 13
    chunks: list[bytes] = []

    class Keep:
        def write(self, chunk: bytes) -> None:
            chunks.append(chunk)

    copy_changes(captured.reader, captured.slot, upto, captured.publication, Keep())
    assert chunks[0].startswith(b"PGCOPY\n\xff\r\n\x00") and chunks[-1] == b"\xff\xff"
    assert len(chunks) == len(captured.peek_messages(upto)) + 1  # a CopyData per message, then the trailer
    stream = b"".join(chunks)
    for piece in (1, 7, 97):
        pieces = [stream[start : start + piece] for start in range(0, len(stream), piece)]

        def copy(sink, pieces=pieces) -> None:
            for chunk in pieces:
                sink.write(chunk)

        writer = RowList()
        next_xid = wal_position(captured.reader).next_xid
        assert _write_batch(copy, captured.consistent_lsn, upto, next_xid, writer) == result
        assert writer.rows == whole


def test_an_error_inside_the_copy_leaves_the_connection_and_the_slot_as_they_were(captured):
    """A TRUNCATE in the window raises inside the decoder's write(), with thousands of
    changes still to come in the COPY: the rollback drops the rest of the COPY (libpq's
    PQexec does), and the same connection then answers queries and reads a batch again; the
    slot was only peeked, and no backend holds it."""
    captured.execute(*insert(1, 2))
    before_truncate = captured.now()
    captured.execute("truncate action")
    after_truncate = captured.now()
    captured.execute(
        "insert into action select i, 7, 's-' || i, 8, '2025-03-01', 3, null, true, false, repeat('q', 200) "
        "from generate_series(10, 5009) as i"
    )
    upto = captured.now()
    status = slot_status(captured.reader, captured.slot)

    with pytest.raises(TruncateCaptured, match="mode=full_refresh"):
        captured.read(captured.consistent_lsn, upto)

    connection = captured.reader
    assert connection.closed == 0
    assert connection.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    assert captured.fetch("select count(*), min(id), max(id) from action") == [(5000, 10, 5009)]
    after = slot_status(connection, captured.slot)
    assert (after.confirmed_flush_lsn, after.restart_lsn) == (status.confirmed_flush_lsn, status.restart_lsn)
    assert captured.fetch(
        "select active_pid from pg_replication_slots where slot_name = %s", (captured.slot,)
    ) == [(None,)]
    rows, result = captured.read(captured.consistent_lsn, before_truncate)
    assert [change["id"] for change in parse_rows(rows)] == ["1", "2"]
    rows, result = captured.read(after_truncate, upto)  # the window after the truncate
    assert [change["id"] for change in parse_rows(rows)] == [str(i) for i in range(10, 5010)]
    assert (result.inserts, result.transactions, result.skipped_transactions) == (5000, 1, 2)
    with pytest.raises(TruncateCaptured):  # the same batch fails again: nothing was consumed
        captured.read(captured.consistent_lsn, upto)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("alter table action add column referrer text", "has new column.s. referrer"),
        ("alter table action drop column exercise_id", "lacks exercise_id"),
        ("alter table action alter column action_time type date", "type OID 1082"),
    ],
)
def test_a_changed_source_table_stops_the_capture(captured, change, says):
    captured.execute(*insert(1))
    captured.execute(change)
    captured.execute(
        "insert into action (id, user_profile_id, session_id, action_type_id, action_time, is_async) "
        "values (2, 7, 's-2', 8, '2025-03-01', false)"
    )
    with pytest.raises(SourceTableChanged, match=says):
        captured.read(captured.consistent_lsn, captured.now())


def test_a_table_shape_fixed_before_the_window_does_not_stop_it(captured):
    captured.execute(*insert(1))
    captured.execute("alter table action add column referrer text")
    captured.execute(*insert(2))  # sent with the Relation that has referrer
    captured.execute("alter table action drop column referrer")
    applied = captured.now()
    captured.execute(*insert(3))  # sent with a new Relation, of the pipeline's shape
    upto = captured.now()
    rows, result = captured.read(applied, upto)
    assert [change["id"] for change in parse_rows(rows)] == ["3"]
    assert result.skipped_transactions == 2  # the inserts (DDL sends no transaction)
    with pytest.raises(SourceTableChanged, match="referrer"):
        captured.read(captured.consistent_lsn, applied)


def test_replica_identity_nothing_stops_the_capture(captured):
    captured.execute("alter table action replica identity nothing")
    captured.execute(*insert(1))
    with pytest.raises(SourceTableChanged, match="replica identity NOTHING without id"):
        captured.read(captured.consistent_lsn, captured.now())


def test_a_timestamptz_action_time_is_written_with_its_offset_too(captured):
    captured.execute(
        "alter table action alter column action_time type timestamptz using action_time at time zone 'UTC'"
    )
    captured.execute(*insert(1))
    rows, _ = captured.read(captured.consistent_lsn, captured.now())
    assert parse_rows(rows)[0]["action_time"] == "2025-03-01 12:00:00.25+00"


def test_every_message_kind_from_a_real_stream(captured):
    """Origin (a replayed transaction), Type (an enum column), Message (emitted, with the
    messages option) and Truncate, decoded from what PostgreSQL 15 sends; the batch reads
    through the Origin."""
    captured.execute(
        "create type mood as enum ('calm', 'busy')",
        "create table side (id int primary key, mood mood)",
        "create publication every_kind for table action, side",
        "select pg_replication_origin_create('upstream')",
    )
    origin_session = captured.connect(synchronous_commit="on")
    with origin_session.cursor() as cursor:
        cursor.execute("select pg_replication_origin_session_setup('upstream')")
        cursor.execute(INSERT_ROW.format(id=1))
        cursor.execute("insert into side values (1, 'busy')")
        cursor.execute("select pg_logical_emit_message(true, 'tracking', 'hello')")
    origin_session.commit()
    with origin_session.cursor() as cursor:
        cursor.execute("select pg_replication_origin_session_reset()")
    origin_session.commit()
    captured.execute("truncate side")

    messages = captured.peek_messages(publication="every_kind", messages="true")
    kinds = {type(record) for record in messages}
    assert kinds == {Begin, Origin, Relation, Type, Insert, Message, Truncate, Commit}
    assert [record.name for record in messages if isinstance(record, Origin)] == ["upstream"]
    assert {record.name for record in messages if isinstance(record, Type)} == {"mood"}
    assert [record.content for record in messages if isinstance(record, Message)] == [b"hello"]
    inserts = [record for record in messages if isinstance(record, Insert)]
    assert inserts[1].new == (b"1", b"busy")

    rows, result = captured.read(captured.consistent_lsn, captured.now())
    assert [change["id"] for change in parse_rows(rows)] == ["1"]  # side is not action
    assert result.transactions == 1  # the capture's own publication has no side
    captured.execute("select pg_replication_origin_drop('upstream')")
