"""Change rows without a database: the columns, and the formatting of action images
(ActionImages) from Relation messages built byte by byte."""

from __future__ import annotations

import pytest

from tests.tracking_sync.capture import pgoutput_messages as m
from tracking_sync.capture.decoding import TouchedIds
from tracking_sync.capture.errors import SourceTableChanged
from tracking_sync.capture.pgoutput import ProtocolError, decode_message
from tracking_sync.capture.rows import CHANGE_COLUMN_NAMES, ActionImages, action_images
from tracking_sync.core.tables import ACTION

TYPES = {"action_time": 1114, "session_id": 1043, "query": 25, "is_exercise_checked": 16, "is_async": 16}


def relation(names=tuple(ACTION.column_names), identity="d", action_time_type=1114):
    columns = [(name, TYPES.get(name, 23), -1, name == "id") for name in names]
    columns = [(n, action_time_type if n == "action_time" else t, mod, key) for n, t, mod, key in columns]
    return decode_message(m.relation(16389, "public", "action", identity, columns))


def image(*, query=b"select 1", action_time=b"2025-03-01 12:00:00.5", session=b's,"1"', exercise=None):
    return (b"1", b"7", session, b"8", action_time, b"3", exercise, b"t", b"f", query)


def test_the_change_columns_are_defined_once():
    assert CHANGE_COLUMN_NAMES[:4] == ("change_seq", "change_kind", "change_xid", "change_commit_lsn")
    assert list(CHANGE_COLUMN_NAMES[4:-1]) == [column.name for column in ACTION.file_columns]
    assert CHANGE_COLUMN_NAMES[-1] == "query_unchanged"


def fields_of(images: ActionImages, values: tuple) -> list[bytes]:
    data = m.tuple_data(*values)
    fields, end, _ = images.format_tuple(data, 0)
    assert end == len(data)
    return fields


def test_an_image_is_written_in_exports_dialect():
    fields = fields_of(ActionImages(relation()), image())
    assert b",".join(fields) == b'1,7,"s,""1""",8,2025-03-01 12:00:00.5+00,3,\\N,t,f,"select 1",f'


@pytest.mark.parametrize(
    ("query", "written"),
    [
        (None, b"\\N,f"),  # NULL: unquoted marker, flag false
        (b"\\N", b'"\\N",t'),  # the text \N: quoted, flagged
        (b"", b'"",f'),  # empty text: quoted
        (b'a "b"\nc', b'"a ""b""\nc",f'),
    ],
)
def test_query_null_empty_and_marker_text(query, written):
    assert b",".join(fields_of(ActionImages(relation()), image(query=query))).endswith(b"," + written)


@pytest.mark.parametrize(
    ("source", "written"),
    [
        (b"2025-03-01 00:00:00", b"2025-03-01 00:00:00+00"),
        (b"0044-03-15 12:00:00 BC", b"0044-03-15 12:00:00+00 BC"),  # as timestamptz prints it
        (b"infinity", b"infinity"),
        (b"-infinity", b"-infinity"),
    ],
)
def test_a_naive_utc_action_time_gets_its_offset(source, written):
    assert fields_of(ActionImages(relation()), image(action_time=source))[4] == written


def test_a_timestamptz_action_time_is_left_as_printed():
    images = ActionImages(relation(action_time_type=1184))
    assert fields_of(images, image(action_time=b"2025-03-01 12:00:00+00"))[4] == b"2025-03-01 12:00:00+00"


def test_columns_are_matched_by_name_not_position():
    names = list(reversed(ACTION.column_names))
    values = dict(zip(ACTION.column_names, image()))
    reordered = tuple(values[name] for name in names)
    assert fields_of(ActionImages(relation(names=tuple(names))), reordered) == fields_of(
        ActionImages(relation()), image()
    )


def test_an_unsent_query_is_null_and_said_so():
    data = m.tuple_data(*image(query=m.UNCHANGED_MARK))
    fields, _, unchanged = ActionImages(relation()).format_tuple(data, 0)
    assert fields[-2:] == [b"\\N", b"f"] and unchanged


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (image(session=m.UNCHANGED_MARK), "session_id unsent"),
        (image(session=(m.BINARY, b"x")), "session_id of kind 'b'"),
        (image()[:-1], "a tuple of 9 columns"),
    ],
)
def test_what_action_tuples_never_hold_is_a_protocol_error(values, says):
    with pytest.raises(ProtocolError, match=says):
        ActionImages(relation()).format_tuple(m.tuple_data(*values), 0)


@pytest.mark.parametrize(
    ("names", "says"),
    [
        (tuple(ACTION.column_names) + ("referrer",), "has new column.s. referrer"),
        (tuple(n for n in ACTION.column_names if n != "course_id"), "lacks course_id"),
    ],
)
def test_a_source_table_of_another_shape_is_refused(names, says):
    with pytest.raises(SourceTableChanged, match=says):
        ActionImages(relation(names=names))


def test_touched_ids_count_each_id_once_in_any_range():
    touched = TouchedIds()
    for id_ in (1, 2, 1, 65_536, 2**31 - 1, -5, -5, 2, 70_000):
        touched.add(id_)
    assert len(touched) == 6


@pytest.mark.parametrize("identity", ["n", "i"])
def test_a_replica_identity_without_id_is_refused_when_a_change_needs_it(identity):
    columns = [(name, TYPES.get(name, 23), -1, False) for name in ACTION.column_names]
    without_key = decode_message(m.relation(16389, "public", "action", identity, columns))
    with pytest.raises(SourceTableChanged, match="without id"):
        ActionImages(without_key)
    refused = action_images(without_key)  # announced: nothing raised yet
    with pytest.raises(SourceTableChanged, match="without id"):
        refused.format_tuple(m.tuple_data(*image()), 0)
    assert isinstance(action_images(relation()), ActionImages)
