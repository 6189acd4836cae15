"""The wire protocol below the socket: one Framer for both directions, the messages the stand-in writes."""

from __future__ import annotations

import struct

import pytest

from devstack.redshift import protocol
from devstack.redshift.protocol import Backend, Frontend


def _data_row(*values: bytes | None) -> bytes:
    body = struct.pack("!H", len(values))
    for value in values:
        body += struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value
    return protocol.message(Backend.DATA_ROW, body)


# what redshift_connector sends for one execute(), and what a backend answers
CLIENT_STREAM = [
    protocol.parse(b"st1", "select $1::int", struct.pack("!H", 0)),
    protocol.message(Frontend.DESCRIBE, b"Sst1\0"),
    protocol.message(Frontend.FLUSH, b""),
    protocol.message(Frontend.SYNC, b""),
    protocol.message(Frontend.BIND, b"\0st1\0" + b"\0" * 6),
    protocol.message(Frontend.EXECUTE, b"\0" + b"\0" * 4),
    protocol.message(Frontend.SYNC, b""),
]
BACKEND_STREAM = [
    protocol.message(Backend.PARSE_COMPLETE, b""),
    protocol.message(Backend.ROW_DESCRIPTION, b"\0\0"),
    _data_row(b"42", None, "é".encode()),
    protocol.message(Backend.COMMAND_COMPLETE, b"SELECT 1\0"),
    protocol.message(Backend.READY_FOR_QUERY, b"T"),
]


@pytest.mark.parametrize("stream", [CLIENT_STREAM, BACKEND_STREAM], ids=["client", "backend"])
@pytest.mark.parametrize("chunk", [1, 3, 5, 7, 4096])
def test_framer_gives_back_each_message_whole_however_the_stream_is_cut(stream, chunk):
    data = b"".join(stream)
    framer = protocol.Framer()
    out = []
    for start in range(0, len(data), chunk):
        out += framer.feed(data[start : start + chunk])
    assert out == stream
    assert framer.pending == 0


def test_framer_keeps_a_partial_message_for_the_next_read():
    query = protocol.query("select 1")
    framer = protocol.Framer()
    assert framer.feed(query + query[:6]) == [query]
    assert framer.pending == 6
    assert framer.feed(query[6:]) == [query]


def test_message_codes_and_payloads():
    raw = protocol.query("select 1")
    assert raw == b"Q\x00\x00\x00\x0dselect 1\x00"
    assert protocol.code_of(raw) == Frontend.QUERY
    assert protocol.payload_of(raw) == b"select 1\0"
    assert protocol.copy_done() == b"c\x00\x00\x00\x04"
    assert protocol.copy_fail("no") == b"f\x00\x00\x00\x07no\x00"
    assert protocol.parameter_status(b"server_version", b"8.0.2") == protocol.message(
        Backend.PARAMETER_STATUS, b"server_version\x008.0.2\x00"
    )


def test_data_row_values_decode_with_nulls():
    raw = _data_row(b"42", None, "é".encode(), b"")
    assert protocol.decode_data_row(protocol.payload_of(raw)) == ["42", None, "é", ""]


def test_error_response_fields_round_trip():
    raw = protocol.error_response("Load into table 't' failed.", "XX000", "line 3")
    assert protocol.code_of(raw) == Backend.ERROR_RESPONSE
    fields = protocol.error_fields(protocol.payload_of(raw))
    assert fields == {
        "S": "ERROR",
        "V": "ERROR",
        "C": "XX000",
        "M": "Load into table 't' failed.",
        "D": "line 3",
    }
    assert protocol.error_response_from_fields(fields) == raw


def test_startup_message_round_trip():
    params = {b"user": b"alice", b"database": b"dev", b"client_protocol_version": b"2"}
    packet = protocol.startup_message(params)
    assert struct.unpack("!II", packet[:8]) == (len(packet), protocol.PROTOCOL_3)
    assert protocol.startup_parameters(packet) == params


def test_cstring():
    assert protocol.cstring(b"ab\0cd\0", 0) == (b"ab", 3)
    assert protocol.cstring(b"ab\0cd\0", 3) == (b"cd", 6)
