"""The hot path of a capture batch: pgoutput messages of action into CSV change rows, in two
implementations with one interface and the same bytes out.

    Decoder(applied_lsn, upto_lsn, next_xid, write_rows, hand_back, flush_bytes=256 KiB)
    write(chunk)                   the decoder is copy_expert's file for
                                   `COPY (<peek>) TO STDOUT (FORMAT binary)`: it reads the binary
                                   COPY framing (header, tuples of one field: a message, trailer),
                                   writes the change rows through write_rows(data, row_count) and
                                   calls hand_back(message) at once for each message it does not
                                   handle (a Relation, a Truncate, ...: tracking_sync.capture.batch
                                   handles those), the rows before it written first
    finish()                       the COPY ended: checks the trailer came, writes what is left
    set_image(oid, images)         relation oid is action, read through an ActionImages (or a
                                   RefusedRelation, whose error its first change raises)
    forget(oid)                    relation oid is not action
    inserts, updates, deletes, transactions, skipped, written, seq, touched,
    in_window, final_lsn           the batch so far

PythonDecoder, below, is the reference. tracking_sync.capture._decode.Decoder is its compiled
twin (_decode.c, built by build_decoder): about thirty times less CPU per change, framing
included (0.14 us against 4.2 over bench/bench_capture.py's 100,000 changes); it hands back
any message it does not read exactly as the reference would, and the reference then raises
its error. A framing error raises framing_error's ProtocolError in both. The capture uses the compiled one when it is built, and
says once which it uses.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable
from typing import Any

from tracking_sync.capture.pgoutput import BEGIN, COMMIT, DELETE, INSERT, UPDATE, ProtocolError, decode_begin
from tracking_sync.capture.rows import FALSE, NEW_TUPLE, OLD_KEY, OLD_ROW, TRUE, UNPACK_INT32
from tracking_sync.core.lsn import widen_xid

log = logging.getLogger(__name__)

FLUSH_BYTES = 256 * 1024  # the most rows' bytes the compiled decoder hands write_rows() at once

# Which decoder a batch uses: compiled (the default when built) or python.
DECODER_VARIABLE = "TRACKING_SYNC_CAPTURE_DECODER"
BUILD_HINT = (
    "build it with `make decoder` (or `python -m tracking_sync.capture.build_decoder`: gcc and "
    "Python's headers)"
)

# --- Touched ids: exact, in memory bounded by the id range, not by the changes. -----------


class TouchedIds:
    """The distinct ids a batch changed, as a sparse bitmap: 8 KiB per 65,536-id block that
    holds any, so ten million changes to recent rows take a few blocks, not a set of ints."""

    BLOCK_BITS = 16

    def __init__(self) -> None:
        self._blocks: dict[int, bytearray] = {}
        self.count = 0

    def add(self, id_: int) -> None:
        block_key, offset = id_ >> self.BLOCK_BITS, id_ & 0xFFFF
        block = self._blocks.get(block_key)
        if block is None:
            block = self._blocks[block_key] = bytearray(1 << (self.BLOCK_BITS - 3))
        byte, bit = offset >> 3, 1 << (offset & 7)
        if not block[byte] & bit:
            block[byte] |= bit
            self.count += 1

    def __len__(self) -> int:
        return self.count


# --- The reference. --------------------------------------------------------------------------


# --- The binary COPY framing (PostgreSQL docs, COPY, "Binary Format"). ----------------------

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
COPY_HEADER_BYTES = 19  # signature, Int32 flags, Int32 header extension length
PEEK_SQL = "include/sql/postgres/capture/peek_changes.sql"
_HEADER, _TUPLES, _ENDED = 0, 1, 2
_UNPACK_COUNT = struct.Struct(">h").unpack_from  # a tuple's field count; -1: the trailer
_UNPACK_LENGTH = struct.Struct(">i").unpack_from  # a field's length; -1: NULL
_UNPACK_HEADER = struct.Struct(">II").unpack_from  # flags, header extension length


def framing_error(what: str, value: int) -> None:
    """Raises the ProtocolError of a binary COPY stream the capture cannot read (both decoders
    raise through here: the same words)."""
    restore = (
        f"the capture's COPY must read only the data column of its peek: restore {PEEK_SQL} "
        "(select data from pg_logical_slot_peek_binary_changes(...)) and "
        'tracking_sync.capture.slot.copy_changes (copy (...) to stdout with (format "binary"))'
    )
    if what == "field length" and value == -1:
        problem = (
            "a NULL message in the peek's binary COPY, which pg_logical_slot_peek_binary_changes never sends"
        )
    elif what == "field length":
        problem = f"a message of length {value} in the peek's binary COPY: the stream is corrupt"
    elif what == "field count":
        problem = f"a binary COPY tuple of {value} fields where the peek selects one (data)"
    elif what == "signature":
        problem = "the peek's COPY did not start with the binary COPY signature (PGCOPY)"
    elif what == "flags":
        problem = f"the peek's binary COPY header has flags {value:#x} (bit 16: OIDs, the rest unknown)"
    elif what == "header extension":
        problem = f"the peek's binary COPY header announces an extension of {value} bytes"
    elif what == "bytes after the trailer":
        problem = f"{value} bytes after the binary COPY trailer of the peek"
    else:  # no header, no trailer
        problem = f"the peek's binary COPY ended with {what} ({value} bytes left unread)"
    raise ProtocolError(f"{problem}: {restore}; then run the task again")


# --- The reference. --------------------------------------------------------------------------


class PythonDecoder:
    """Begin, Commit, Insert, Update and Delete messages, in Python; every other kind is
    handed back."""

    def __init__(
        self,
        applied_lsn: int,
        upto_lsn: int,
        next_xid: int,
        write_rows: Callable[[bytes, int], Any],
        hand_back: Callable[[bytes], Any],
        flush_bytes: int = 0,  # the compiled one's; this one writes each row as it is made
    ):
        self.applied_lsn, self.upto_lsn, self.next_xid = applied_lsn, upto_lsn, next_xid
        self.write_rows, self.hand_back = write_rows, hand_back
        self.images: dict[int, Any] = {}  # relation OID -> ActionImages | RefusedRelation
        self.touched_ids = TouchedIds()
        self.inserts = self.updates = self.deletes = self.transactions = self.skipped = 0
        self.written = self.seq = 0
        self.in_window = False
        self.final_lsn: int | None = None
        self.xid_lsn = b""  # this transaction's change_xid and change_commit_lsn fields
        self._copy_state = _HEADER
        self._pending = b""  # a tuple split between two writes

    @property
    def touched(self) -> int:
        return len(self.touched_ids)

    def set_image(self, oid: int, images: Any) -> None:
        self.images[oid] = images

    def forget(self, oid: int) -> None:
        self.images.pop(oid, None)

    def write(self, chunk: bytes) -> int:
        """The next bytes of the peek's binary COPY (psycopg2: one CopyData message, one tuple)."""
        data = self._pending + chunk if self._pending else chunk
        end, pos = len(data), 0
        if self._copy_state == _HEADER:
            if end < COPY_HEADER_BYTES:
                self._pending = bytes(data)
                return len(chunk)
            if data[:11] != COPY_SIGNATURE:
                framing_error("signature", 0)
            flags, extension = _UNPACK_HEADER(data, 11)
            if flags & 0xFFFF0000:
                framing_error("flags", flags)
            if end < COPY_HEADER_BYTES + extension:
                self._pending = bytes(data)
                return len(chunk)
            pos = COPY_HEADER_BYTES + extension
            self._copy_state = _TUPLES
        message, hand_back = self.message, self.hand_back
        while pos < end:
            if self._copy_state == _ENDED:
                framing_error("bytes after the trailer", end - pos)
            if end - pos < 2:
                break
            (count,) = _UNPACK_COUNT(data, pos)
            if count == -1:
                self._copy_state = _ENDED
                pos += 2
                continue
            if count != 1:
                framing_error("field count", count)
            if end - pos < 6:
                break
            (length,) = _UNPACK_LENGTH(data, pos + 2)
            if length < 0:
                framing_error("field length", length)
            if end - pos - 6 < length:
                break
            body = bytes(data[pos + 6 : pos + 6 + length])
            pos += 6 + length
            if not message(body):
                hand_back(body)
        self._pending = bytes(data[pos:])
        return len(chunk)

    def finish(self) -> None:
        """The COPY ended: it must have ended with its trailer, nothing left over."""
        if self._copy_state != _ENDED:
            framing_error("no header" if self._copy_state == _HEADER else "no trailer", len(self._pending))
        if self._pending:
            framing_error("bytes after the trailer", len(self._pending))

    def message(self, data: bytes) -> bool:
        """One pgoutput message: True when handled (written, counted), False for one to hand
        back (nothing of it written or counted)."""
        # The hot path: each row written as soon as it is made; the formatting is inline
        # rather than in helpers because a Python call per change costs a good part of the
        # server's own decoding time.
        if not data:
            return False
        kind = data[0]
        if kind == INSERT or kind == UPDATE or kind == DELETE:
            if not self.in_window:
                return True
            image = self.images.get(UNPACK_INT32(data, 1)[0]) if len(data) >= 5 else None
            if image is None:
                if len(data) < 5:
                    raise ProtocolError(f"a {chr(kind)!r} message of {len(data)} bytes, cut short")
                return True  # another table of the publication
            tuple_kind = data[5]
            if kind == INSERT:
                if tuple_kind != NEW_TUPLE:
                    raise ProtocolError(f"an insert without its new tuple (N), found {chr(tuple_kind)!r}")
                fields, end, _ = image.format_tuple(data, 6)
                change, unchanged = b"I", FALSE
                self.inserts += 1
            elif kind == DELETE:
                if tuple_kind != OLD_KEY and tuple_kind != OLD_ROW:
                    raise ProtocolError(
                        f"a delete without its old key (K) or row (O), found {chr(tuple_kind)!r}"
                    )
                fields, end, _ = image.format_tuple(data, 6)
                change, unchanged = b"D", FALSE
                self.deletes += 1
            else:
                old = None
                pos = 5
                if tuple_kind == OLD_KEY or tuple_kind == OLD_ROW:
                    old, pos, _ = image.format_tuple(data, 6)
                if data[pos] != NEW_TUPLE:
                    raise ProtocolError(f"an update without its new tuple (N), found {chr(data[pos])!r}")
                fields, end, query_unsent = image.format_tuple(data, pos + 1)
                unchanged = FALSE
                if query_unsent:
                    if tuple_kind == OLD_ROW:  # REPLICA IDENTITY FULL: the old row has it
                        toastable = image.toastable_field
                        fields[toastable : toastable + 2] = old[toastable : toastable + 2]
                    else:
                        unchanged = TRUE
                if old is not None and old[image.id_field] != fields[image.id_field]:
                    # The key changed: the old id is gone, as if deleted.
                    self.seq += 1
                    line = b'%d,"D",%s%s,f\n' % (self.seq, self.xid_lsn, b",".join(old))
                    self.write_rows(line, 1)
                    self.written += len(line)
                    self.touched_ids.add(int(old[image.id_field]))
                    self.deletes += 1
                change = b"U"
                self.updates += 1
            if end != len(data):
                raise ProtocolError(
                    f"{len(data) - end} bytes after the last tuple of a {chr(kind)!r} message"
                )
            self.seq += 1
            line = b'%d,"%s",%s%s,%s\n' % (self.seq, change, self.xid_lsn, b",".join(fields), unchanged)
            self.touched_ids.add(int(fields[image.id_field]))
            self.write_rows(line, 1)
            self.written += len(line)
            return True
        if kind == BEGIN:
            begin = decode_begin(data)
            in_window = self.applied_lsn <= begin.final_lsn < self.upto_lsn
            if in_window:
                self.xid_lsn = b"%d,%d," % (widen_xid(begin.xid, self.next_xid), begin.final_lsn)
                self.transactions += 1
            else:
                self.skipped += 1
            self.in_window, self.final_lsn = in_window, begin.final_lsn
            return True
        return kind == COMMIT


# --- Which one. --------------------------------------------------------------------------------

try:
    from tracking_sync.capture._decode import Decoder as CompiledDecoder
except ImportError as error:  # not built: the reference runs, slower
    CompiledDecoder = None
    _import_error = str(error)

_said: set[str] = set()


def decoder_class() -> type:
    """The decoder a batch uses: $TRACKING_SYNC_CAPTURE_DECODER (compiled | python), else the
    compiled one when it is built. Logs the choice once per process."""
    wanted = os.environ.get(DECODER_VARIABLE, "").strip().lower() or None
    if wanted not in (None, "compiled", "python"):
        raise ValueError(f"{DECODER_VARIABLE}={wanted!r}: use compiled or python (or leave it unset)")
    if wanted == "compiled" and CompiledDecoder is None:
        raise RuntimeError(
            f"{DECODER_VARIABLE}=compiled, but tracking_sync.capture._decode is not built "
            f"({_import_error}): {BUILD_HINT}"
        )
    use_compiled = CompiledDecoder is not None and wanted != "python"
    choice = "compiled" if use_compiled else "python"
    if choice not in _said:
        _said.add(choice)
        if use_compiled:
            log.info("change capture: the compiled decoder (tracking_sync.capture._decode)")
        elif wanted == "python":
            log.info("change capture: the pure-Python decoder (%s=python)", DECODER_VARIABLE)
        else:
            log.warning(
                "change capture: the pure-Python decoder, several times slower than the compiled one, "
                "which is not built here (%s); %s",
                _import_error,
                BUILD_HINT,
            )
    return CompiledDecoder if use_compiled else PythonDecoder


def explain_refusal(reference: PythonDecoder, in_window: bool, data: bytes) -> None:
    """The compiled decoder handed back a Begin, Commit or change message: `reference` (a
    PythonDecoder with the batch's window and images, writing nowhere) reads it alone, in the
    same state, and raises its error for it."""
    reference.in_window = in_window
    reference.message(data)
    raise ProtocolError(
        f"the compiled decoder refused a message that the Python decoder reads ({data[:64]!r}"
        f"...): run with {DECODER_VARIABLE}=python and report it"
    )


__all__ = ["CompiledDecoder", "PythonDecoder", "TouchedIds", "decoder_class", "framing_error"]
