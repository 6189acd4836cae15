"""The capture task's stage: a run's batch of changes, from the slot into parts in the scratch area.

Like the export of an interval, but the rows are the changes to action committed from the
target's applied LSN up to the one the run planned (tracking_sync.capture.batch), written
as zstd CSV parts under the run's `action_changes` prefix; upload, manifest and COPY follow
as for any export, and the publish applies them (tracking_sync.load.apply_changes).
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

from tracking_sync.capture.batch import read_changes
from tracking_sync.capture.slot import PUBLICATION
from tracking_sync.core.errors import StagingDiskFull
from tracking_sync.core.lsn import format_lsn
from tracking_sync.core.plan import RunPlan
from tracking_sync.core.settings import Settings
from tracking_sync.extract.export import write_to_scratch
from tracking_sync.extract.partitions import WHOLE
from tracking_sync.extract.parts import ExportResult, PartWriter

CHANGES = "action_changes"
# zstd compresses the change parts in a worker thread of its own (python-zstandard's threads=1),
# beside the thread that decodes: bench/bench_capture.py at 10 M rows, 100k changes, on a quiet
# machine 0.173 s against 0.194 s in one thread (0.75x the fastest raw peek against 0.66x), the
# same on a busy one (no core free), the same bytes' ratio, +9 MiB of peak RSS (its 2 MiB jobs),
# flat in the changes. The export stays in one thread: its stream is the backend's COPY.
CAPTURE_ZSTD_THREADS = 1


def capture_for_run(
    plan: RunPlan,
    settings: Settings,
    connection: Any,
    *,
    applied_lsn: int | None,
    attempt: int = 1,
    s3_client: Any = None,
) -> dict:
    """Write the run's batch (changes committed in [applied_lsn, plan.upto_lsn)) into the
    scratch area; returns the export's XCom plus `capture`: the LSNs and the changes per kind."""
    assert plan.slot is not None and plan.upto_lsn is not None
    start = applied_lsn if applied_lsn is not None else plan.upto_lsn
    upto = max(plan.upto_lsn, start)  # a retry after the apply: an empty batch
    batch = {}

    def produce(directory: Path, on_part_closed: Any, disk_advice: str) -> ExportResult:
        if directory.exists():
            shutil.rmtree(directory)  # parts of an earlier attempt must not be uploaded again
        directory.mkdir(parents=True)
        writer = PartWriter(
            directory, settings.part_bytes, "part-", on_part_closed, threads=CAPTURE_ZSTD_THREADS
        )
        try:
            try:
                result = read_changes(connection, plan.slot, PUBLICATION, start, upto, writer)
            except BaseException:
                writer.abort()
                raise
            parts = writer.close()
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            shutil.rmtree(directory, ignore_errors=True)
            raise StagingDiskFull(
                f"the scratch folder {directory} ran out of space while capturing the changes to "
                f"action ({error.strerror}); the partial parts were removed. {disk_advice}, then "
                "clear the export task."
            ) from error
        batch.update(result.summary())
        return ExportResult(table=CHANGES, parts=parts)

    summary = write_to_scratch(
        settings, CHANGES, plan.run_slice, produce, partition=WHOLE, attempt=attempt, s3_client=s3_client
    )
    summary["capture"] = {**batch, "from_lsn": start, "upto_lsn_int": upto, "slot": plan.slot}
    summary["capture"]["from"] = format_lsn(start)
    return summary
