"""The compiled decoder (tracking_sync.capture._decode) against the Python one, its reference,
without a database: the same pgoutput streams (built byte by byte), framed as the peek's binary
COPY and written to each decoder as psycopg2's copy_expert writes them, through a batch with
each, must give the same bytes, the same counts and the same errors. The real server's
messages go through both in test_capture_batch.py."""

from __future__ import annotations

import random
import struct

import pytest

from tests.tracking_sync.capture import pgoutput_messages as m
from tests.tracking_sync.capture.utils import RowList
from tracking_sync.capture import decoding
from tracking_sync.capture.batch import _write_batch
from tracking_sync.capture.errors import SourceTableChanged, TruncateCaptured
from tracking_sync.capture.pgoutput import ProtocolError, decode_relation
from tracking_sync.capture.rows import action_images
from tracking_sync.core.tables import ACTION

ACTION_OID, OTHER_OID = 16389, 16400
TYPES = {"action_time": 1114, "session_id": 1043, "query": 25, "is_exercise_checked": 16, "is_async": 16}
NEXT_XID = (3 << 32) + 1000  # epoch 3: xids above 1000 are of epoch 2
APPLIED, UPTO = 100, 10_000


def action_relation(names=tuple(ACTION.column_names), identity="d", time_type=1114, oid=ACTION_OID) -> bytes:
    columns = [
        (name, time_type if name == "action_time" else TYPES.get(name, 23), -1, name == "id")
        for name in names
    ]
    return m.relation(oid, "public", "action", identity, columns)


def other_relation() -> bytes:
    return m.relation(
        OTHER_OID, "public", "action_type", "d", [("id", 23, -1, True), ("name", 25, -1, False)]
    )


def row(
    id_: int | str | None = 1,
    *,
    query: object = b"select 1",
    time: object = b"2025-03-01 12:00:00.5",
    **values,
):
    """An action tuple in ACTION's column order."""
    defaults = {
        "id": None if id_ is None else str(id_).encode(),
        "user_profile_id": b"7",
        "session_id": b's,"1"',
        "action_type_id": b"8",
        "action_time": time,
        "course_id": b"3",
        "exercise_id": None,
        "is_exercise_checked": b"t",
        "is_async": b"f",
        "query": query,
    }
    defaults.update(values)
    return tuple(defaults[name] for name in ACTION.column_names)


def key(id_: int) -> tuple:
    return tuple(str(id_).encode() if name == "id" else None for name in ACTION.column_names)


def written(chunks: list[bytes]):
    """A copy(sink) of _write_batch that writes `chunks` as copy_expert would."""

    def copy(sink) -> None:
        for chunk in chunks:
            assert sink.write(chunk) == len(chunk)

    return copy


def run_stream(decoder: str, chunks: list[bytes], monkeypatch, next_xid: int = NEXT_XID):
    monkeypatch.setenv(decoding.DECODER_VARIABLE, decoder)
    writer = RowList()
    result = _write_batch(written(chunks), APPLIED, UPTO, next_xid, writer)
    return writer.rows, result


def run(
    decoder: str, messages: list[bytes], monkeypatch, next_xid: int = NEXT_XID
) -> tuple[list[bytes], object]:
    """The batch of `messages`, in a binary COPY written a tuple at a time (m.copy_chunks)."""
    return run_stream(decoder, m.copy_chunks(messages), monkeypatch, next_xid)


def assert_same(messages: list[bytes], monkeypatch) -> list[bytes]:
    rows, result = run("python", messages, monkeypatch)
    assert run("compiled", messages, monkeypatch) == (rows, result)
    return rows


def outcome(decoder: str, messages: list[bytes], monkeypatch, next_xid: int = NEXT_XID):
    try:
        return run(decoder, messages, monkeypatch, next_xid)
    except Exception as error:  # the error is the outcome compared
        return type(error), str(error)


TRICKY_QUERIES = [
    None,
    b"",
    b"\\N",
    b'a "quoted" word, a comma',
    b"line one\nline two\r\nthree",
    b"back\\slash \\\\ and \\N inside",
    "multibyte: élève, 学生, emoji \U0001f600".encode(),
    b'"',
    b'""',
    ("x" * 39_990 + '"end"').encode(),
]
TIMES = [
    b"2025-03-01 12:00:00.5",
    b"2025-03-01 12:00:00",
    b"0044-03-15 00:00:00 BC",
    b"infinity",
    b"-infinity",
]


def test_every_kind_of_change_is_written_alike(monkeypatch):
    messages = [m.begin(50, 0, 999), action_relation(), m.insert(ACTION_OID, *row(1)), m.commit(50, 60, 0)]
    messages += [m.begin(200, 0, 1001), action_relation(), other_relation()]  # xid of the epoch before
    for i, query in enumerate(TRICKY_QUERIES):
        messages.append(m.insert(ACTION_OID, *row(10 + i, query=query)))
    for i, time in enumerate(TIMES):
        messages.append(m.insert(ACTION_OID, *row(30 + i, time=time, exercise_id=b"12")))
    messages += [
        m.insert(OTHER_OID, b"1", b"another table"),
        m.update(ACTION_OID, row(10, query=b"v2")),
        m.update(ACTION_OID, row(11, query=m.UNCHANGED_MARK)),  # unchanged TOAST: flagged
        m.update(ACTION_OID, row(12), old=key(99)),  # the key changed: a delete of 99 first
        m.update(ACTION_OID, row(13), old=key(13)),  # an old key, the same id
        m.delete(ACTION_OID, key(10)),
        m.delete(OTHER_OID, (b"1", None)),
        m.truncate(0, OTHER_OID),
        m.type_message(70000, "public", "mood"),
        m.message(True, 210, "prefix", b"content"),
        m.origin(5, "elsewhere"),
        m.commit(200, 260, 0),
        m.begin(20_000, 0, 2000),  # committed at/after upto: skipped
        m.insert(ACTION_OID, *row(500)),
        m.truncate(0, ACTION_OID),
        m.commit(20_000, 20_010, 0),
    ]
    rows = assert_same(messages, monkeypatch)
    assert rows[0] == b'1,"I",8589935593,200,10,7,"s,""1""",8,2025-03-01 12:00:00.5+00,3,\\N,t,f,\\N,f,f\n'
    unsent = b'"U",8589935593,200,11,7,"s,""1""",8,2025-03-01 12:00:00.5+00,3,\\N,t,f,\\N,f,t\n'
    assert [r for r in rows if r.split(b",", 1)[1] == unsent]
    assert b",0044-03-15 00:00:00+00 BC," in rows[len(TRICKY_QUERIES) + 2]
    assert b",infinity,3," in rows[len(TRICKY_QUERIES) + 3]
    assert [r.split(b",")[1] for r in rows[-6:]] == [b'"U"', b'"U"', b'"D"', b'"U"', b'"U"', b'"D"']


def test_replica_identity_full_takes_an_unsent_query_from_the_old_row(monkeypatch):
    messages = [
        m.begin(200, 0, 5),
        action_relation(identity="f", time_type=1184),
        m.update(ACTION_OID, row(1, query=m.UNCHANGED_MARK), old=row(1, query=b'old "q"'), old_kind="O"),
        m.update(ACTION_OID, row(1, query=m.UNCHANGED_MARK), old=row(1, query=b"\\N"), old_kind="O"),
        m.update(
            ACTION_OID, row(2, query=m.UNCHANGED_MARK), old=row(1, query=m.UNCHANGED_MARK), old_kind="O"
        ),
        m.delete(ACTION_OID, row(2, time=b"2025-03-01 12:00:00+00"), old_kind="O"),
        m.commit(200, 210, 0),
    ]
    rows = assert_same(messages, monkeypatch)
    assert rows[0].endswith(b',"old ""q""",f,f\n') and rows[1].endswith(b',"\\N",t,f\n')


def test_columns_in_another_order_are_written_in_the_files_order(monkeypatch):
    names = tuple(reversed(ACTION.column_names))
    values = tuple(reversed(row(4, query=b"q")))
    messages = [
        m.begin(200, 0, 5),
        action_relation(names=names),
        m.insert(ACTION_OID, *values),
        m.commit(200, 210, 0),
    ]
    messages_in_order = [
        m.begin(200, 0, 5),
        action_relation(),
        m.insert(ACTION_OID, *row(4, query=b"q")),
        m.commit(200, 210, 0),
    ]
    assert assert_same(messages, monkeypatch) == assert_same(messages_in_order, monkeypatch)


def test_random_streams_are_written_alike(monkeypatch):
    generator = random.Random(18)
    pieces = [b"a", b'"', b",", b"\n", b"\\", b"\\N", "é学".encode(), b" ", b"select", b"\r"]

    def text() -> bytes | None:
        if generator.random() < 0.1:
            return None
        return b"".join(generator.choice(pieces) for _ in range(generator.randrange(0, 30)))

    messages = [action_relation()]
    lsn = 100
    for transaction in range(60):
        lsn += generator.randrange(1, 400)
        messages.append(m.begin(lsn, 0, 900 + transaction * 3))
        for _ in range(generator.randrange(0, 8)):
            id_ = generator.randrange(-3, 300_000)
            values = row(id_, query=text(), session_id=text(), exercise_id=generator.choice([None, b"5"]))
            choice = generator.random()
            if choice < 0.4:
                messages.append(m.insert(ACTION_OID, *values))
            elif choice < 0.8:
                query = m.UNCHANGED_MARK if generator.random() < 0.3 else values[-1]
                old = generator.choice([None, key(id_), key(id_ + 1)])
                messages.append(m.update(ACTION_OID, values[:-1] + (query,), old=old))
            else:
                messages.append(m.delete(ACTION_OID, key(id_)))
        messages.append(m.commit(lsn, lsn + 8, 0))
    assert_same(messages, monkeypatch)


BAD_TUPLES = {
    "a binary value": row(1, course_id=(m.BINARY, b"\x00\x03")),
    "an unsent value that is not query": row(1, session_id=m.UNCHANGED_MARK),
    "a NULL id": row(None),
    "an empty action_time": row(1, time=b""),
    "an id that is not a number": row(1, id=b"1e3"),
}


@pytest.mark.parametrize("what", BAD_TUPLES)
@pytest.mark.parametrize("kind", ["insert", "update", "delete"])
def test_what_the_reference_refuses_fails_alike(what, kind, monkeypatch):
    values = BAD_TUPLES[what]
    change = {
        "insert": m.insert(ACTION_OID, *values),
        "update": m.update(ACTION_OID, values, old=key(5)),
        "delete": m.delete(ACTION_OID, values, old_kind="O"),
    }[kind]
    messages = [
        m.begin(200, 0, 5),
        action_relation(),
        m.insert(ACTION_OID, *row(1)),
        change,
        m.commit(200, 210, 0),
    ]
    python = outcome("python", messages, monkeypatch)
    assert isinstance(python[0], type) and issubclass(python[0], (ProtocolError, ValueError, IndexError)), (
        python
    )
    assert outcome("compiled", messages, monkeypatch) == python


def malformed() -> dict[str, list[bytes]]:
    insert = m.insert(ACTION_OID, *row(1))
    return {
        "a tuple of fewer columns": [m.insert(ACTION_OID, *row(1)[:-1])],
        "bytes after the tuple": [insert + b"x"],
        "a message cut short": [insert[:-3]],
        "a length past the end": [insert[:-9] + b"\xff\xff\xff\xff" + insert[-5:]],
        "an insert without N": [b"I" + insert[1:5] + b"K" + insert[6:]],
        "a delete without K or O": [m.delete(ACTION_OID, key(1), old_kind="N")],
        "an update without N": [
            m.update(ACTION_OID, row(1), old=key(1))[: -len(m.tuple_data(*row(1))) - 1] + b"X"
        ],
        "an update with an old tuple cut short": [m.update(ACTION_OID, row(1), old=key(1))[:12]],
        "a change of five bytes": [insert[:5]],
        "a change of three bytes": [insert[:3]],
        "an empty message": [b""],
        "an unknown message kind": [b"Z123"],
        "a begin cut short": [m.begin(300, 0, 5)[:12]],
        "a begin of an xid after the next one, epoch 0": [m.begin(300, 0, 4_000_000_000)],
        "a truncate of action": [m.truncate(1, OTHER_OID, ACTION_OID)],
        "a change of a refused action": [action_relation(names=ACTION.column_names[:-1]), insert],
    }


@pytest.mark.parametrize("what", malformed())
def test_malformed_messages_fail_alike(what, monkeypatch):
    messages = [m.begin(200, 0, 5), action_relation(), *malformed()[what], m.commit(200, 210, 0)]
    next_xid = 1000 if what.endswith("epoch 0") else NEXT_XID
    python = outcome("python", messages, monkeypatch, next_xid)
    assert isinstance(python[0], type), f"the reference accepted {what}"
    assert outcome("compiled", messages, monkeypatch, next_xid) == python
    if what == "a truncate of action":
        assert python[0] is TruncateCaptured
    if what == "a change of a refused action":
        assert python[0] is SourceTableChanged


def test_the_capture_says_which_decoder_it_uses(monkeypatch, caplog):
    monkeypatch.setattr(decoding, "_said", set())
    monkeypatch.setenv(decoding.DECODER_VARIABLE, "python")
    caplog.set_level("INFO", logger=decoding.__name__)
    assert decoding.decoder_class() is decoding.PythonDecoder
    assert decoding.decoder_class() is decoding.PythonDecoder
    assert [record.getMessage() for record in caplog.records] == [
        f"change capture: the pure-Python decoder ({decoding.DECODER_VARIABLE}=python)"
    ]
    monkeypatch.delenv(decoding.DECODER_VARIABLE)
    assert decoding.decoder_class() is decoding.CompiledDecoder is not None, "make install builds it"


def test_without_the_compiled_decoder_the_capture_runs_the_python_one_and_says_how_to_build_it(
    monkeypatch, caplog
):
    monkeypatch.setattr(decoding, "_said", set())
    monkeypatch.setattr(decoding, "CompiledDecoder", None)
    monkeypatch.setattr(
        decoding, "_import_error", "No module named 'tracking_sync.capture._decode'", raising=False
    )
    monkeypatch.delenv(decoding.DECODER_VARIABLE, raising=False)
    assert decoding.decoder_class() is decoding.PythonDecoder
    (record,) = caplog.records
    assert record.levelname == "WARNING" and "build_decoder" in record.getMessage()
    monkeypatch.setenv(decoding.DECODER_VARIABLE, "compiled")
    with pytest.raises(RuntimeError, match="build_decoder"):
        decoding.decoder_class()


# --- The binary COPY framing. ----------------------------------------------------------------

STREAM = [
    m.begin(200, 0, 5),
    action_relation(),
    m.insert(ACTION_OID, *row(1)),
    m.update(ACTION_OID, row(1, query=b"v2")),
    m.delete(ACTION_OID, key(1)),
    m.commit(200, 210, 0),
]


def stream_outcome(decoder: str, chunks: list[bytes], monkeypatch):
    try:
        return run_stream(decoder, chunks, monkeypatch)
    except Exception as error:  # the error is the outcome compared
        return type(error), str(error)


@pytest.mark.parametrize("decoder", ["compiled", "python"])
def test_a_stream_split_anywhere_gives_the_same_rows(decoder, monkeypatch):
    """psycopg2 writes whole tuples; a tuple (or the header) split between writes is kept
    until its end arrives: every split, and a byte at a time, give the same batch."""
    whole = run(decoder, STREAM, monkeypatch)
    assert len(whole[0]) == 3
    stream = b"".join(m.copy_chunks(STREAM))
    for cut in range(1, len(stream)):
        assert run_stream(decoder, [stream[:cut], stream[cut:]], monkeypatch) == whole, cut
    assert run_stream(decoder, [bytes([byte]) for byte in stream], monkeypatch) == whole
    assert run_stream(decoder, [stream], monkeypatch) == whole


def test_an_empty_peek_is_the_header_and_the_trailer_alone(monkeypatch):
    assert m.copy_chunks([]) == [m.COPY_HEADER + m.COPY_TRAILER]
    rows, result = assert_same([], monkeypatch), run("python", [], monkeypatch)[1]
    assert rows == [] and result.rows == 0 and result.transactions == 0


def test_a_header_extension_is_skipped(monkeypatch):
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">II", 0, 4) + b"abcd"
    tuples = b"".join(m.copy_tuple(message) for message in STREAM)
    chunks = [header + tuples + m.COPY_TRAILER]
    rows = stream_outcome("python", chunks, monkeypatch)
    assert stream_outcome("compiled", chunks, monkeypatch) == rows == run("python", STREAM, monkeypatch)


def bad_streams() -> dict[str, tuple[list[bytes], str]]:
    chunks = m.copy_chunks(STREAM)
    header, first = chunks[0][:19], chunks[0][19:]
    return {
        "a NULL message": (
            [header + first, struct.pack(">hi", 1, -1), m.COPY_TRAILER],
            "a NULL message in the peek's binary COPY",
        ),
        "two fields": (
            [header + first, struct.pack(">hi", 2, 1) + b"C" + struct.pack(">i", -1), m.COPY_TRAILER],
            "a binary COPY tuple of 2 fields where the peek selects one",
        ),
        "no fields": ([header + first, struct.pack(">h", 0), m.COPY_TRAILER], "tuple of 0 fields"),
        "a negative length": (
            [header + first, struct.pack(">hi", 1, -7), m.COPY_TRAILER],
            "a message of length -7",
        ),
        "the text format": (
            [b"\\x42" + b"00" * 20 + b"\n", b"\\.\n"],
            "did not start with the binary COPY signature",
        ),
        "OIDs": (
            [b"PGCOPY\n\xff\r\n\x00" + struct.pack(">II", 1 << 16, 0) + first, m.COPY_TRAILER],
            "0x10000",
        ),
        "no trailer": (chunks[:-1], "ended with no trailer"),
        "a tuple cut short": (
            [*chunks[:-1], chunks[1][:-2]],
            f"ended with no trailer ({len(chunks[1]) - 2} bytes left unread)",
        ),
        "no header": ([b"PGCOPY"], "ended with no header"),
        "nothing at all": ([], "ended with no header"),
        "bytes after the trailer": ([*chunks, b"\x00"], "1 bytes after the binary COPY trailer"),
        "a tuple after the trailer": (
            [*chunks[:-1], m.COPY_TRAILER + chunks[1]],
            "bytes after the binary COPY trailer",
        ),
    }


@pytest.mark.parametrize("what", bad_streams())
def test_a_stream_that_is_not_the_peeks_binary_copy_fails_alike_naming_the_fix(what, monkeypatch):
    chunks, says = bad_streams()[what]
    python = stream_outcome("python", chunks, monkeypatch)
    assert python[0] is ProtocolError, python
    assert says in python[1]
    assert "peek_changes.sql" in python[1] and 'format "binary"' in python[1]
    assert stream_outcome("compiled", chunks, monkeypatch) == python


@pytest.mark.parametrize("decoder", ["compiled", "python"])
def test_a_message_handed_back_comes_after_the_rows_before_it_and_before_those_after(decoder, monkeypatch):
    """hand_back runs inside write(), synchronously: the Relation of a second table arrives
    between two inserts, and an error it raises ends the stream there."""
    order: list[object] = []
    monkeypatch.setenv(decoding.DECODER_VARIABLE, decoder)
    decoder_type = decoding.decoder_class()
    sink = decoder_type(
        APPLIED, UPTO, NEXT_XID, lambda data, rows: order.append(rows), order.append, flush_bytes=1
    )
    sink.set_image(ACTION_OID, action_images_of(action_relation()))
    for chunk in m.copy_chunks(
        [
            m.begin(200, 0, 5),
            m.insert(ACTION_OID, *row(1)),
            other_relation(),
            m.insert(ACTION_OID, *row(2)),
            m.commit(200, 210, 0),
        ]
    ):
        sink.write(chunk)
    sink.finish()
    assert order == [1, other_relation(), 1]

    def refuse(data: bytes) -> None:
        raise TruncateCaptured("stop here")

    sink = decoder_type(APPLIED, UPTO, NEXT_XID, lambda data, rows: order.append(rows), refuse)
    chunks = m.copy_chunks([m.begin(200, 0, 5), other_relation(), m.insert(ACTION_OID, *row(2))])
    sink.write(chunks[0])
    with pytest.raises(TruncateCaptured, match="stop here"):
        sink.write(chunks[1])


def action_images_of(relation: bytes):
    return action_images(decode_relation(relation))
