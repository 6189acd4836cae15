"""The PostgreSQL v3 wire protocol, as far as the stand-in speaks it.

Named message codes for each direction (the same letter means different things:
'E' is Execute from a client and ErrorResponse from a server), one Framer that
cuts either byte stream into messages, and builders for the few messages the
stand-in writes itself. No I/O apart from reading the untyped startup packet.
"""

from __future__ import annotations

import asyncio
import struct

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608

_LENGTH = struct.Struct("!I")


class Frontend:
    """Codes of the messages a client sends."""

    QUERY = b"Q"
    PARSE = b"P"
    BIND = b"B"
    EXECUTE = b"E"
    DESCRIBE = b"D"
    CLOSE = b"C"
    SYNC = b"S"
    FLUSH = b"H"
    TERMINATE = b"X"
    COPY_DATA = b"d"
    COPY_DONE = b"c"
    COPY_FAIL = b"f"


class Backend:
    """Codes of the messages a server sends."""

    AUTHENTICATION = b"R"
    PARAMETER_STATUS = b"S"
    BACKEND_KEY_DATA = b"K"
    READY_FOR_QUERY = b"Z"
    ROW_DESCRIPTION = b"T"
    DATA_ROW = b"D"
    COMMAND_COMPLETE = b"C"
    EMPTY_QUERY_RESPONSE = b"I"
    ERROR_RESPONSE = b"E"
    NOTICE_RESPONSE = b"N"
    PARSE_COMPLETE = b"1"
    BIND_COMPLETE = b"2"
    CLOSE_COMPLETE = b"3"
    NO_DATA = b"n"
    PARAMETER_DESCRIPTION = b"t"
    PORTAL_SUSPENDED = b"s"
    COPY_IN_RESPONSE = b"G"
    COPY_OUT_RESPONSE = b"H"


class TransactionStatus:
    """The status byte of ReadyForQuery."""

    IDLE = b"I"
    IN_BLOCK = b"T"
    FAILED = b"E"


class Framer:
    """Cuts one direction's byte stream into whole messages.

    A message is a code byte, a 4-byte big-endian length that counts itself, and
    the body. feed() takes what a read returned and gives back every message it
    completed, each as its raw bytes (code and length included, so it can be
    forwarded as is); a partial message waits for the next feed().
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        messages = []
        pos, size = 0, len(buffer)
        while size - pos >= 5:
            (length,) = _LENGTH.unpack_from(buffer, pos + 1)
            end = pos + 1 + length
            if end > size:
                break
            messages.append(bytes(buffer[pos:end]))
            pos = end
        del buffer[:pos]
        return messages

    @property
    def pending(self) -> int:
        """Bytes of a message not yet complete."""
        return len(self._buffer)


def code_of(raw: bytes) -> bytes:
    return raw[:1]


def payload_of(raw: bytes) -> bytes:
    return raw[5:]


def message(code: bytes, payload: bytes) -> bytes:
    return code + _LENGTH.pack(len(payload) + 4) + payload


def cstring(data: bytes, pos: int) -> tuple[bytes, int]:
    """The NUL-terminated string at pos, and the position after its NUL."""
    end = data.index(b"\0", pos)
    return data[pos:end], end + 1


# --------------------------------------------------------------------------- startup


async def read_startup_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(request code, the whole packet) of an untyped startup-phase packet."""
    header = await reader.readexactly(4)
    (length,) = _LENGTH.unpack(header)
    body = await reader.readexactly(length - 4)
    (code,) = _LENGTH.unpack(body[:4])
    return code, header + body


def startup_parameters(packet: bytes) -> dict[bytes, bytes]:
    """The name/value pairs of a StartupMessage, in order."""
    params = packet[8:].split(b"\0")
    return {k: v for k, v in zip(params[0:-1:2], params[1::2]) if k}


def startup_message(parameters: dict[bytes, bytes]) -> bytes:
    body = _LENGTH.pack(PROTOCOL_3) + b"".join(k + b"\0" + v + b"\0" for k, v in parameters.items()) + b"\0"
    return _LENGTH.pack(len(body) + 4) + body


# --------------------------------------------------------------------------- messages


def query(sql: str) -> bytes:
    return message(Frontend.QUERY, sql.encode("utf-8") + b"\0")


def parse(name: bytes, sql: str, rest: bytes) -> bytes:
    """A Parse of `sql` as statement `name`; `rest` is the parameter type list as received."""
    return message(Frontend.PARSE, name + b"\0" + sql.encode("utf-8") + b"\0" + rest)


def copy_data(chunk: bytes) -> bytes:
    return message(Frontend.COPY_DATA, chunk)


def copy_done() -> bytes:
    return message(Frontend.COPY_DONE, b"")


def copy_fail(reason: str) -> bytes:
    return message(Frontend.COPY_FAIL, reason.encode("utf-8") + b"\0")


def parameter_status(name: bytes, value: bytes) -> bytes:
    return message(Backend.PARAMETER_STATUS, name + b"\0" + value + b"\0")


def decode_data_row(payload: bytes) -> list[str | None]:
    """The text-format values of a DataRow."""
    (count,) = struct.unpack_from("!H", payload, 0)
    pos, out = 2, []
    for _ in range(count):
        (size,) = struct.unpack_from("!i", payload, pos)
        pos += 4
        if size < 0:
            out.append(None)
        else:
            out.append(payload[pos : pos + size].decode("utf-8"))
            pos += size
    return out


def error_fields(payload: bytes) -> dict[str, str]:
    """The fields of an ErrorResponse or NoticeResponse by their one-letter codes (C, M, D, n, ...)."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(payload) and payload[pos] != 0:
        code = chr(payload[pos])
        value, pos = cstring(payload, pos + 1)
        out[code] = value.decode("utf-8", "replace")
    return out


def error_response_from_fields(fields: dict[str, str]) -> bytes:
    body = b"".join(k.encode() + v.encode("utf-8") + b"\0" for k, v in fields.items()) + b"\0"
    return message(Backend.ERROR_RESPONSE, body)


def error_response(message_text: str, sqlstate: str = "XX000", detail: str = "") -> bytes:
    fields = {"S": "ERROR", "V": "ERROR", "C": sqlstate, "M": message_text}
    if detail:
        fields["D"] = detail
    return error_response_from_fields(fields)
