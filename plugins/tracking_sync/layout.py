"""Where a run's parts live: one key prefix per table and run slice.

    load prefix   s3://<bucket>/<prefix>/<table>/<slice label>/part-0000.csv.zst
                                                              /part-02-0000.csv.zst (partition 2)
                                                              /manifest.json
    staging area  <staging>/<prefix>/<table>/<slice label>/<partition>/try-<n>/part-0000.csv.zst

<staging> is TRACKING_SYNC_STAGING_URL (tracking_sync.staging_area); <partition> is `whole`
or p02of04 (tracking_sync.partitions), try-<n> the export task's attempt. What passes
between tasks is URLs: the staged part's and the S3 URI it is published at.
"""

from __future__ import annotations

from pathlib import Path

from tracking_sync.config import Settings
from tracking_sync.partitions import Partition
from tracking_sync.plan import RunSlice

MANIFEST_NAME = "manifest.json"


def run_prefix(settings: Settings, table: str, run_slice: RunSlice) -> str:
    return f"{settings.prefix}/{table}/{run_slice.label}/"


def staged_slice_prefix(settings: Settings, table: str, run_slice: RunSlice) -> str:
    """The key prefix, inside the staging area, of every attempt of every partition."""
    return run_prefix(settings, table, run_slice)


def staged_partition_prefix(settings: Settings, table: str, run_slice: RunSlice, partition: Partition) -> str:
    return f"{staged_slice_prefix(settings, table, run_slice)}{partition.name}/"


def staged_attempt_prefix(
    settings: Settings, table: str, run_slice: RunSlice, partition: Partition, attempt: int
) -> str:
    return f"{staged_partition_prefix(settings, table, run_slice, partition)}try-{attempt}/"


def staging_directory(settings: Settings, table: str, run_slice: RunSlice) -> Path:
    return settings.staging_dir / run_prefix(settings, table, run_slice)


def local_path(settings: Settings, key: str) -> Path:
    return settings.staging_dir / key


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key
