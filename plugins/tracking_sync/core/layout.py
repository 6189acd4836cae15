"""Where a run's parts live: one key prefix per table and run slice.

    load prefix   s3://<bucket>/<prefix>/<table>/<slice label>/part-0000.csv.zst
                                                              /part-02-0000.csv.zst (partition 2)
                                                              /manifest.json
    scratch area  <scratch>/<prefix>/<table>/<slice label>/<partition>/try-<n>/part-0000.csv.zst

<scratch> is TRACKING_SYNC_STAGING_URL (tracking_sync.core.scratch); <partition> is `whole`
or p02of04 (tracking_sync.extract.partitions), try-<n> the export task's attempt. What passes
between tasks is URLs: the scratch part's and the S3 URI it is published at.
"""

from __future__ import annotations

from tracking_sync.core.plan import RunSlice
from tracking_sync.core.settings import Settings

MANIFEST_NAME = "manifest.json"


def run_prefix(settings: Settings, table: str, run_slice: RunSlice) -> str:
    """The key prefix of one table's run slice: the load prefix in S3, and in the scratch area
    the folder of every attempt of every partition."""
    return f"{settings.prefix}/{table}/{run_slice.label}/"


def scratch_partition_prefix(settings: Settings, table: str, run_slice: RunSlice, partition: str) -> str:
    return f"{run_prefix(settings, table, run_slice)}{partition}/"


def scratch_attempt_prefix(
    settings: Settings, table: str, run_slice: RunSlice, partition: str, attempt: int
) -> str:
    return f"{scratch_partition_prefix(settings, table, run_slice, partition)}try-{attempt}/"
