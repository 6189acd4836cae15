"""Parts: compressed CSV files of bounded size, written as rows stream in.

PartWriter buffers 1 MiB before a zstd level-1 compressor and closes a part once its
uncompressed size passes the part size; nothing holds more than the buffer, so memory stays
flat however big the table is. The export (COPY TO STDOUT) and change capture both write
through it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import zstandard

NULL_MARKER = r"\N"
PART_SUFFIX = ".csv.zst"
ZSTD_LEVEL = 1  # level 3 compressed no better on this data and costs 50% more CPU
WRITE_BUFFER_BYTES = 1024 * 1024  # small writes into the compressor are slow in Python


@dataclass(frozen=True)
class Part:
    name: str
    rows: int
    bytes: int  # compressed, as stored
    raw_bytes: int  # uncompressed CSV


@dataclass(frozen=True)
class ExportResult:
    table: str
    parts: tuple[Part, ...]
    # What the export saw (tracking_sync.load.sync_state.Snapshot.to_xcom), when asked for.
    snapshot: dict[str, Any] | None = None

    @property
    def rows(self) -> int:
        return sum(part.rows for part in self.parts)

    @property
    def bytes(self) -> int:
        return sum(part.bytes for part in self.parts)

    @property
    def raw_bytes(self) -> int:
        return sum(part.raw_bytes for part in self.parts)

    def summary(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "rows": self.rows,
            "bytes": self.bytes,
            "raw_bytes": self.raw_bytes,
            "parts": [asdict(part) for part in self.parts],
            **({"snapshot": self.snapshot} if self.snapshot is not None else {}),
        }


class PartWriter:
    """A file-like sink for copy_expert that writes zstd-compressed parts of bounded size.

    psycopg2 calls write() once per CopyData message, and PostgreSQL sends one
    message per row (a row with newlines inside quotes included), so a part is only
    ever closed between rows: every part is a complete CSV file on its own.
    """

    def __init__(
        self,
        directory: Path,
        part_bytes: int,
        part_prefix: str = "part-",
        on_part_closed: Callable[[Path], None] | None = None,
        *,
        level: int = ZSTD_LEVEL,
        threads: int = 0,
        job_bytes: int = 0,
    ) -> None:
        """`level`, `threads` and `job_bytes` are zstd's (threads=1: compression in a worker
        thread of zstd's own, beside the thread that writes, in jobs of job_bytes; 0: zstd's
        default). The export uses the defaults, the capture one worker thread
        (tracking_sync.capture.changes.CAPTURE_ZSTD_THREADS); bench/bench_capture.py --zstd
        measures the others (docs/benchmarks.md, "Change capture")."""
        self.directory = directory
        self.part_bytes = part_bytes
        self.part_prefix = part_prefix
        self.on_part_closed = on_part_closed
        self.parts: list[Part] = []
        if threads or job_bytes:
            parameters = zstandard.ZstdCompressionParameters.from_level(
                level, threads=threads, job_size=job_bytes
            )
            self._compressor = zstandard.ZstdCompressor(compression_params=parameters)
        else:
            self._compressor = zstandard.ZstdCompressor(level=level)
        self._open_part()

    def _open_part(self) -> None:
        self._name = f"{self.part_prefix}{len(self.parts):04d}{PART_SUFFIX}"
        self._path = self.directory / self._name
        raw_file = open(self._path, "wb")  # noqa: SIM115 - closed through the compressor
        self._buffer = io.BufferedWriter(
            self._compressor.stream_writer(raw_file), buffer_size=WRITE_BUFFER_BYTES
        )
        self._rows = 0
        self._raw_bytes = 0

    def _close_part(self) -> None:
        self._buffer.close()  # flushes the buffer, ends the zstd frame, closes the file
        self.parts.append(Part(self._name, self._rows, self._path.stat().st_size, self._raw_bytes))
        if self.on_part_closed is not None:
            self.on_part_closed(self._path)

    def write(self, row: bytes) -> int:
        self.write_rows(row, 1)
        return len(row)

    def write_rows(self, data: bytes, rows: int) -> None:
        """`rows` whole rows at once (the change capture's decoder writes a few hundred KB per
        call): the part is closed after them when it has reached part_bytes."""
        self._buffer.write(data)
        self._rows += rows
        self._raw_bytes += len(data)
        if self._raw_bytes >= self.part_bytes:
            self._close_part()
            self._open_part()

    def close(self) -> tuple[Part, ...]:
        if self._rows == 0 and len(self.parts) > 0:  # the previous part ended exactly at the limit
            self._buffer.close()
            self._path.unlink()
        else:
            self._close_part()
        return tuple(self.parts)

    def abort(self) -> None:
        """Close the open part after a failure, without raising again: on a full disk the
        close's own flush fails too, and that must not hide the first error."""
        with contextlib.suppress(OSError):
            self._buffer.close()
