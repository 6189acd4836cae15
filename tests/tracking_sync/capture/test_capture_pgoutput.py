"""The pgoutput decoder on messages built byte by byte (no database): every message kind,
every tuple column kind, and malformed input."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from tests.tracking_sync.capture import pgoutput_messages as m
from tracking_sync.capture.pgoutput import (
    TRUNCATE_CASCADE,
    TRUNCATE_RESTART_IDENTITY,
    UNCHANGED,
    Begin,
    BinaryValue,
    Commit,
    Delete,
    Insert,
    Message,
    Origin,
    ProtocolError,
    Relation,
    RelationColumn,
    Truncate,
    Type,
    Update,
    decode_message,
)
from tracking_sync.capture.pgoutput_records import pg_time
from tracking_sync.core.lsn import format_lsn, parse_lsn, widen_xid

ACTION_OID = 16389


def test_begin_and_commit():
    assert decode_message(m.begin(0x1_5156F8, 818_000_000_000_000, 727)) == Begin(
        0x1_5156F8, 818_000_000_000_000, 727
    )
    assert decode_message(m.commit(0x1515728, 0x1515758, 42)) == Commit(0, 0x1515728, 0x1515758, 42)


def test_an_xid_above_two_to_the_31_is_unsigned():
    assert decode_message(m.begin(1, 0, 0xFFFF_FFFE)).xid == 0xFFFF_FFFE


def test_commit_time_is_microseconds_since_2000():
    assert pg_time(0) == datetime(2000, 1, 1, tzinfo=UTC)
    assert pg_time(86_400_000_001) == datetime(2000, 1, 2, 0, 0, 0, 1, tzinfo=UTC)


def test_relation_names_columns_types_and_identity():
    data = m.relation(
        ACTION_OID,
        "public",
        "action",
        "d",
        [("id", 23, -1, True), ("session_id", 1043, 104, False), ("action_time", 1114, -1, False)],
    )
    assert decode_message(data) == Relation(
        ACTION_OID,
        "public",
        "action",
        "d",
        (
            RelationColumn("id", 23, -1, True),
            RelationColumn("session_id", 1043, 104, False),
            RelationColumn("action_time", 1114, -1, False),
        ),
    )


def test_type_origin_and_message():
    assert decode_message(m.type_message(16400, "public", "mood")) == Type(16400, "public", "mood")
    assert decode_message(m.origin(0xABCDEF, "upstream")) == Origin(0xABCDEF, "upstream")
    assert decode_message(m.message(True, 77, "tracking", b"\x00bin")) == Message(
        True, 77, "tracking", b"\x00bin"
    )
    assert decode_message(m.message(False, 78, "p", b"")).transactional is False


def test_insert_with_every_column_kind():
    record = decode_message(m.insert(ACTION_OID, "1", None, "", (m.BINARY, b"\x00\x01"), "日本"))
    assert record == Insert(ACTION_OID, (b"1", None, b"", b"\x00\x01", "日本".encode()))
    assert isinstance(record.new[3], BinaryValue) and not isinstance(record.new[0], BinaryValue)


def test_update_without_old_tuple_with_unchanged_toast():
    record = decode_message(m.update(ACTION_OID, ("1", "x", m.UNCHANGED_MARK)))
    assert record == Update(ACTION_OID, None, None, (b"1", b"x", UNCHANGED))


@pytest.mark.parametrize("old_kind", ["K", "O"])
def test_update_with_old_key_or_old_row(old_kind):
    record = decode_message(m.update(ACTION_OID, ("2", "new"), old=("1", None), old_kind=old_kind))
    assert record == Update(ACTION_OID, old_kind, (b"1", None), (b"2", b"new"))


@pytest.mark.parametrize("old_kind", ["K", "O"])
def test_delete_with_old_key_or_old_row(old_kind):
    assert decode_message(m.delete(ACTION_OID, ("5", None), old_kind)) == Delete(
        ACTION_OID, old_kind, (b"5", None)
    )


def test_truncate_lists_relations_and_options():
    record = decode_message(m.truncate(TRUNCATE_CASCADE | TRUNCATE_RESTART_IDENTITY, 1, 2, 3))
    assert record == Truncate(3, (1, 2, 3))


def test_a_long_value_is_read_by_its_length():
    query = "x" * 70_000 + '",\n\\N'
    assert decode_message(m.insert(1, "1", query)).new[1] == query.encode()


def test_unchanged_is_one_marker_that_survives_pickling():
    assert pickle.loads(pickle.dumps(UNCHANGED)) is UNCHANGED
    assert repr(UNCHANGED) == "UNCHANGED"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"S\x00\x00\x00\x01", "protocol version 1"),  # a version-2 stream start
        (m.insert(1, "1")[:-1], "past the end"),  # cut inside a value
        (m.insert(1, "1")[:-3], "malformed"),  # cut inside a length
        (m.insert(1, "1") + b"n", "after the last tuple"),
        (m.update(1, ("1",), ("1",), "K") + b"n", "after the last tuple"),
        (b"I\x00\x00\x00\x01N\x00\x01x", "column kind"),
        (b"I\x00\x00\x00\x01X\x00\x00", "new tuple"),
        (b"D\x00\x00\x00\x01N\x00\x00", "old key"),
        (b"R\x00\x00\x00\x01public", "malformed"),  # a name without its NUL
    ],
)
def test_malformed_messages_raise_protocol_error(data, says):
    with pytest.raises(ProtocolError, match=says):
        decode_message(data)


def test_lsn_text_round_trip():
    assert parse_lsn("16/B374D848") == 0x16_B374D848
    assert format_lsn(0x16_B374D848) == "16/B374D848"
    assert format_lsn(parse_lsn("0/0")) == "0/0"
    assert parse_lsn(format_lsn((1 << 64) - 1)) == (1 << 64) - 1
    with pytest.raises(ValueError, match="not an LSN"):
        parse_lsn("16-B374D848")


@pytest.mark.parametrize(
    ("xid", "next_full", "widened"),
    [
        (727, 737, 727),  # epoch 0
        (5, (3 << 32) + 10, (3 << 32) + 5),  # same epoch
        (10, (3 << 32) + 10, (3 << 32) + 10),  # the next xid itself (never seen, harmless)
        (0xFFFF_FFF0, (3 << 32) + 10, (2 << 32) + 0xFFFF_FFF0),  # assigned before the wrap
        (0x8000_0000, (1 << 32) + 5, 0x8000_0000),
    ],
)
def test_widen_xid_across_the_wrap(xid, next_full, widened):
    assert widen_xid(xid, next_full) == widened


def test_widen_xid_refuses_an_xid_from_before_epoch_zero():
    with pytest.raises(ValueError, match="no earlier epoch"):
        widen_xid(20, 10)
