"""Export: stream one table's rows out of the source into compressed CSV parts.

The rows go from the server's `COPY (SELECT ...) TO STDOUT` through psycopg2's
copy_expert into PartWriter, which buffers 1 MiB before a zstd level-1 compressor and
closes a part once its uncompressed size passes the part size. Nothing holds more
than the buffer, so memory stays flat however big the table is.

Measured (docs/benchmarks.md): the export stage runs at 0.93-0.97 of a raw
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
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tracking_sync.core.errors import StagingDiskFull
from tracking_sync.core.layout import run_prefix, scratch_attempt_prefix, scratch_partition_prefix
from tracking_sync.core.lsn import parse_lsn
from tracking_sync.core.plan import RunPlan, RunSlice
from tracking_sync.core.s3 import s3_unreachable_named, s3_uri, transfer_config
from tracking_sync.core.scratch import ScratchArea
from tracking_sync.core.settings import Settings
from tracking_sync.core.snapshot import Snapshot
from tracking_sync.core.sql import render_sql
from tracking_sync.core.tables import Table, get_table
from tracking_sync.extract.partitions import ID_COLUMN, WHOLE, Partition
from tracking_sync.extract.parts import NULL_MARKER, ExportResult, PartWriter


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
    record_snapshot: bool = False,
) -> ExportResult:
    """Write the run's slice of `table` (one partition of it) as parts into `directory`
    (emptied first); `on_part_closed(path)` is called with each part once it is complete.

    `connection` is an open psycopg2 connection to the source. There is always at
    least one part (possibly with no rows), so the manifest is never empty. With
    `record_snapshot`, the rows are read in one REPEATABLE READ snapshot, which the result
    carries with the source's WAL position (logical capture: what this reload already saw).
    """
    if directory.exists():
        shutil.rmtree(directory)  # parts of an earlier attempt must not be uploaded again
    directory.mkdir(parents=True)
    snapshot = None
    with connection.cursor() as cursor:
        if record_snapshot:
            cursor.execute("set transaction isolation level repeatable read")
            cursor.execute(render_sql("postgres/select_export_snapshot.sql"))
            snapshot_text, lsn = cursor.fetchone()
            snapshot = Snapshot.parse(snapshot_text, parse_lsn(lsn)).to_xcom()
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
    return ExportResult(table=table.name, parts=parts, snapshot=snapshot)


def describe_export(
    settings: Settings,
    run_slice: RunSlice,
    result: ExportResult,
    staged_prefix: str,
    partition: Partition = WHOLE,
) -> dict:
    """The export's XCom: counts and sizes, each part named by its S3 URI-to-be (`uri`) and
    by where it is staged (`staged`: a URL in the scratch area, under `staged_prefix`)."""
    prefix = run_prefix(settings, result.table, run_slice)
    area = settings.scratch
    summary = result.summary()
    summary["partition"] = partition.to_xcom()
    summary["scratch_prefix"] = run_prefix(settings, result.table, run_slice)
    for part in summary["parts"]:
        name = part.pop("name")
        part["uri"] = s3_uri(settings.bucket, prefix + name)
        part["staged"] = area.url_of(staged_prefix + name)
    return summary


class StagedPuts:
    """Puts each closed part into an s3:// scratch area while the export writes the next one
    (at most one put in flight: the local spool holds at most two parts), then removes the
    local file. An error of a put is raised by the next part's close or by wait()."""

    def __init__(self, area: ScratchArea, key_prefix: str, s3_client: Any, table: str) -> None:
        self.area, self.key_prefix, self.client, self.table = area, key_prefix, s3_client, table
        self._transfer = transfer_config()
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
    """The export task: one partition of the run's slice of one table into the scratch area
    (keyed on the slice, the partition and the attempt; what earlier attempts of the
    partition left is removed first); returns its XCom. `s3_client` is needed for an s3://
    scratch area only. With logical capture, action's export records its snapshot."""
    table = get_table(table_name)
    record_snapshot = plan.capture == "logical" and table.is_incremental

    def produce(directory: Path, on_part_closed: Any, disk_advice: str) -> ExportResult:
        return export_table(
            connection,
            table,
            plan.run_slice,
            directory,
            settings.part_bytes,
            partition=partition,
            on_part_closed=on_part_closed,
            disk_advice=disk_advice,
            record_snapshot=record_snapshot,
        )

    return write_to_scratch(
        settings,
        table_name,
        plan.run_slice,
        produce,
        partition=partition,
        attempt=attempt,
        s3_client=s3_client,
    )


def write_to_scratch(
    settings: Settings,
    files: str,
    run_slice: RunSlice,
    produce: Callable[[Path, Any, str], ExportResult],
    *,
    partition: Partition = WHOLE,
    attempt: int = 1,
    s3_client: Any = None,
) -> dict:
    """Write one partition's parts into the scratch area under `files` (the table's name, or
    action_changes): `produce(directory, on_part_closed, disk_advice)` writes them into a
    folder, from which they are put in an s3:// scratch area as each one closes."""
    area = settings.scratch
    area.remove_tree(s3_client, scratch_partition_prefix(settings, files, run_slice, partition.name))
    key_prefix = scratch_attempt_prefix(settings, files, run_slice, partition.name, attempt)
    if area.is_local:
        result = produce(area.path_of(key_prefix), None, LOCAL_DISK_ADVICE)
        return describe_export(settings, run_slice, result, key_prefix, partition)
    # s3:// scratch: spool one part at a time on the local temp dir, then put it in S3.
    spool = Path(tempfile.mkdtemp(prefix=f"tracking_sync-{files}-"))
    puts = StagedPuts(area, key_prefix, s3_client, files)
    try:
        result = produce(
            spool,
            puts,
            f"With TRACKING_SYNC_STAGING_URL={area.url} the export spools up to two parts "
            "at a time in the worker's temp dir (TMPDIR) before putting them in S3: free "
            "space there, point TMPDIR at a bigger volume or lower TRACKING_SYNC_PART_MB",
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
