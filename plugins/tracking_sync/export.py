"""Export: stream one table's rows out of the source into compressed CSV parts.

The rows go from the server's `COPY (SELECT ...) TO STDOUT` through psycopg2's
copy_expert into PartWriter, which buffers 1 MiB before a zstd level-1 compressor and
closes a part once its uncompressed size passes the part size. Nothing holds more
than the buffer, so memory stays flat however big the table is.

Measured (README, Benchmarks): the export stage runs at 0.93-0.97 of a raw
`COPY action TO STDOUT` to /dev/null, with flat memory; without the buffer, with gzip
or with psycopg 3's row iteration it is markedly slower (client-bound).

CSV dialect, chosen so that Redshift's COPY (CSV, NULL AS '\\N') reads back what
the source holds:
- NULL of a number or boolean is written as an unquoted \\N;
- a nullable text column's NULL is an unquoted \\N too, and a <name>_is_marker flag
  travels beside it (tables.Column.travels_with_null_flag): Redshift matches NULL AS
  after removing quotes, so a text that is literally \\N loads as NULL, and the flag
  gives it back;
- every text value is quoted (FORCE_QUOTE), so '' is "" and stays '' (no EMPTYASNULL);
- quotes inside values are doubled; commas and newlines sit inside quotes;
- action_time is written with its offset (+00), see tables.ACTION.
"""

from __future__ import annotations

import contextlib
import errno
import io
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import zstandard

from tracking_sync.config import Settings
from tracking_sync.exceptions import StagingDiskFull
from tracking_sync.layout import (
    run_prefix,
    s3_uri,
    staged_attempt_prefix,
    staged_partition_prefix,
    staged_slice_prefix,
)
from tracking_sync.partitions import ID_COLUMN, WHOLE, Partition
from tracking_sync.plan import RunPlan, RunSlice
from tracking_sync.sql_templates import render_sql
from tracking_sync.staging_area import StagingArea, s3_unreachable_named
from tracking_sync.tables import Table, get_table

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
    ) -> None:
        self.directory = directory
        self.part_bytes = part_bytes
        self.part_prefix = part_prefix
        self.on_part_closed = on_part_closed
        self.parts: list[Part] = []
        self._compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
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
        self._buffer.write(row)
        self._rows += 1
        self._raw_bytes += len(row)
        if self._raw_bytes >= self.part_bytes:
            self._close_part()
            self._open_part()
        return len(row)

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


def export_statement(table: Table, run_slice: RunSlice, partition: Partition = WHOLE) -> str:
    """The SELECT for the run's slice of `table` (bounds still as %(start)s / %(end)s, and
    a partition's as %(id_from)s / %(id_to)s)."""
    time_column = table.time_column if not run_slice.full_refresh else None
    return render_sql(
        "postgres/export_table.sql",
        table=table.name,
        columns=[column.select_expression for column in table.file_columns],
        time_column=time_column,
        id_column=ID_COLUMN,
        id_from=partition.id_from is not None,
        id_to=partition.id_to is not None,
    )


def copy_statement(cursor: Any, table: Table, run_slice: RunSlice, partition: Partition = WHOLE) -> str:
    """The full `COPY (SELECT ...) TO STDOUT` with the bounds bound by the driver.

    COPY takes no bind parameters, so the SELECT's values are inlined with the
    driver's own quoting (mogrify), never by string formatting.
    """
    select = export_statement(table, run_slice, partition)
    values: dict[str, Any] = {"id_from": partition.id_from, "id_to": partition.id_to}
    if table.is_incremental and not run_slice.full_refresh:
        values["start"], values["end"] = run_slice.naive_utc_bounds
    if "%(" in select:
        select = cursor.mogrify(select, values).decode()
    force_quote = ", ".join(table.text_columns)
    options = f"format csv, null '{NULL_MARKER}'"
    if force_quote:
        options += f", force_quote ({force_quote})"
    return f"copy ({select}) to stdout with ({options})"


LOCAL_DISK_ADVICE = (
    "Free space there or point TRACKING_SYNC_STAGING_URL (file:///...) or "
    "TRACKING_SYNC_STAGING_DIR at a bigger volume"
)


def export_table(
    connection: Any,
    table: Table,
    run_slice: RunSlice,
    directory: Path,
    part_bytes: int,
    *,
    partition: Partition = WHOLE,
    on_part_closed: Callable[[Path], None] | None = None,
    disk_advice: str = LOCAL_DISK_ADVICE,
) -> ExportResult:
    """Write the run's slice of `table` (one partition of it) as parts into `directory`
    (emptied first); `on_part_closed(path)` is called with each part once it is complete.

    `connection` is an open psycopg2 connection to the source. There is always at
    least one part (possibly with no rows), so the manifest is never empty.
    """
    if directory.exists():
        shutil.rmtree(directory)  # parts of an earlier attempt must not be uploaded again
    directory.mkdir(parents=True)
    with connection.cursor() as cursor:
        # Text out as UTF-8 whatever the server's default, and timestamptz rendered in UTC
        # with an explicit +00 offset, in ISO format (what COPY's TIMEFORMAT 'auto' reads).
        cursor.execute("set client_encoding to 'UTF8'")
        cursor.execute("set timezone to 'UTC'")
        cursor.execute("set datestyle to 'ISO, YMD'")
        statement = copy_statement(cursor, table, run_slice, partition)
        try:
            writer = PartWriter(directory, part_bytes, partition.part_prefix, on_part_closed)
            try:
                cursor.copy_expert(statement, writer)
            except BaseException:
                writer.abort()
                raise
            parts = writer.close()
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            shutil.rmtree(directory, ignore_errors=True)  # no partial part is left to upload
            raise StagingDiskFull(
                f"the staging folder {directory} ran out of space while exporting {table.name} "
                f"({error.strerror}); the partial parts were removed. {disk_advice} (a part "
                f"needs up to {part_bytes // (1024 * 1024)} MiB of CSV compressed, "
                "TRACKING_SYNC_PART_MB), then clear the export task."
            ) from error
    connection.rollback()  # read-only; leave no transaction open
    return ExportResult(table=table.name, parts=parts)


def describe_export(
    settings: Settings,
    run_slice: RunSlice,
    result: ExportResult,
    staged_prefix: str,
    partition: Partition = WHOLE,
) -> dict:
    """The export's XCom: counts and sizes, each part named by its S3 URI-to-be (`uri`) and
    by where it is staged (`staged`: a URL in the staging area, under `staged_prefix`)."""
    prefix = run_prefix(settings, result.table, run_slice)
    area = settings.staging
    summary = result.summary()
    summary["partition"] = partition.to_xcom()
    summary["staging_prefix"] = staged_slice_prefix(settings, result.table, run_slice)
    for part in summary["parts"]:
        name = part.pop("name")
        part["uri"] = s3_uri(settings.bucket, prefix + name)
        part["staged"] = area.url_of(staged_prefix + name)
    return summary


class StagedPuts:
    """Puts each closed part into an s3:// staging area while the export writes the next one
    (at most one put in flight: the local spool holds at most two parts), then removes the
    local file. An error of a put is raised by the next part's close or by wait()."""

    def __init__(self, area: StagingArea, key_prefix: str, s3_client: Any, table: str) -> None:
        from boto3.s3.transfer import TransferConfig

        from tracking_sync.staging import MULTIPART_CHUNK_BYTES, UPLOAD_THREADS

        self.area, self.key_prefix, self.client, self.table = area, key_prefix, s3_client, table
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_CHUNK_BYTES,
            multipart_chunksize=MULTIPART_CHUNK_BYTES,
            max_concurrency=UPLOAD_THREADS,
        )
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="staged-put")
        self._pending: Future | None = None

    def _put(self, path: Path) -> None:
        key = self.area.root + self.key_prefix + path.name
        with s3_unreachable_named(self.client, self.area.bucket, key, f"staging {self.table} parts at"):
            self.client.upload_file(str(path), self.area.bucket, key, Config=self._transfer)
        path.unlink()

    def __call__(self, path: Path) -> None:
        self.wait()
        self._pending = self._pool.submit(self._put, path)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def export_for_run(
    table_name: str,
    plan: RunPlan,
    settings: Settings,
    connection: Any,
    *,
    partition: Partition = WHOLE,
    attempt: int = 1,
    s3_client: Any = None,
) -> dict:
    """The export task: one partition of the run's slice of one table into the staging area
    (keyed on the slice, the partition and the attempt; what earlier attempts of the
    partition left is removed first); returns its XCom. `s3_client` is needed for an s3://
    staging area only."""
    area = settings.staging
    table, run_slice = get_table(table_name), plan.run_slice
    area.remove_tree(s3_client, staged_partition_prefix(settings, table_name, run_slice, partition))
    key_prefix = staged_attempt_prefix(settings, table_name, run_slice, partition, attempt)
    if area.is_local:
        result = export_table(
            connection, table, run_slice, area.path_of(key_prefix), settings.part_bytes, partition=partition
        )
        return describe_export(settings, run_slice, result, key_prefix, partition)
    # s3:// staging: spool one part at a time on the local temp dir, then put it in S3.
    spool = Path(tempfile.mkdtemp(prefix=f"tracking_sync-{table_name}-"))
    puts = StagedPuts(area, key_prefix, s3_client, table_name)
    try:
        result = export_table(
            connection,
            table,
            run_slice,
            spool,
            settings.part_bytes,
            partition=partition,
            on_part_closed=puts,
            disk_advice=(
                f"With TRACKING_SYNC_STAGING_URL={area.url} the export spools up to two parts "
                "at a time in the worker's temp dir (TMPDIR) before putting them in S3: free "
                "space there, point TMPDIR at a bigger volume or lower TRACKING_SYNC_PART_MB"
            ),
        )
        puts.wait()
    except BaseException:
        puts.close()
        with contextlib.suppress(Exception):  # no partial attempt is left staged to upload
            area.remove_tree(s3_client, key_prefix)
        raise
    finally:
        puts.close()
        shutil.rmtree(spool, ignore_errors=True)
    return describe_export(settings, run_slice, result, key_prefix, partition)
