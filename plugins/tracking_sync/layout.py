"""Where a run's parts live: one key prefix per table and run slice, mirrored on the staging dir.

    s3://<bucket>/<prefix>/<table>/<slice label>/part-0000.csv.zst
                                                /manifest.json
    <staging dir>/<prefix>/<table>/<slice label>/part-0000.csv.zst

The S3 URI is all that passes between tasks: the upload finds the local file from it.
"""

from __future__ import annotations

from pathlib import Path

from tracking_sync.config import Settings
from tracking_sync.plan import RunSlice

MANIFEST_NAME = "manifest.json"


def run_prefix(settings: Settings, table: str, run_slice: RunSlice) -> str:
    return f"{settings.prefix}/{table}/{run_slice.label}/"


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
