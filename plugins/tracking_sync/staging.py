"""Staging: upload a run's parts to S3 and write the COPY manifest.

Where the parts live is tracking_sync.layout. A rerun of the same slice overwrites the parts, drops parts an earlier attempt
left behind, and rewrites the manifest, which lists exactly this attempt's parts
(mandatory, so COPY fails rather than loading fewer files).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from tracking_sync.config import MIB, Settings
from tracking_sync.exceptions import StagingPartMissing
from tracking_sync.layout import MANIFEST_NAME, local_path, s3_uri, split_s3_uri

# Measured against S3 here: 16 MiB parts on 4 threads beat single-part and 64 MiB parts.
MULTIPART_CHUNK_BYTES = 16 * MIB
_INTERVAL_LABEL = re.compile(r"\d{8}t\d{6}_(\d{8}t\d{6})")
UPLOAD_THREADS = 4


def manifest_document(part_uris: list[str]) -> dict:
    return {"entries": [{"url": uri, "mandatory": True} for uri in part_uris]}


def upload_export(s3_client: Any, settings: Settings, export_summary: dict) -> dict:
    """Upload the parts an export described, write the manifest, drop stale objects.

    Returns the upload's XCom: bucket, manifest key and URI, part URIs, rows, bytes.
    """
    from boto3.s3.transfer import TransferConfig

    uris = [part["uri"] for part in export_summary["parts"]]
    local_files = []
    for uri in uris:
        bucket, key = split_s3_uri(uri)
        local = local_path(settings, key)
        if not local.is_file():
            raise StagingPartMissing(
                f"staging part {uri} is not at {local}: export and upload must see the same "
                f"TRACKING_SYNC_STAGING_DIR ({settings.staging_dir}). On several workers point "
                "it at shared storage; if the folder was cleaned, clear the export task so it "
                "runs again (upload and load follow)."
            )
        local_files.append((local, bucket, key))
    if not local_files:
        raise StagingPartMissing(f"the export of {export_summary['table']} listed no parts")

    transfer = TransferConfig(
        multipart_threshold=MULTIPART_CHUNK_BYTES,
        multipart_chunksize=MULTIPART_CHUNK_BYTES,
        max_concurrency=UPLOAD_THREADS,
    )
    bucket = local_files[0][1]
    prefix = local_files[0][2].rsplit("/", 1)[0] + "/"
    manifest_key = prefix + MANIFEST_NAME
    with s3_unreachable_named(s3_client, bucket, prefix, export_summary["table"]):
        for local, part_bucket, key in local_files:
            s3_client.upload_file(str(local), part_bucket, key, Config=transfer)
        s3_client.put_object(
            Bucket=bucket,
            Key=manifest_key,
            Body=json.dumps(manifest_document(uris), indent=1).encode(),
            ContentType="application/json",
        )
        keep = {key for _, _, key in local_files} | {manifest_key}
        stale = delete_stale_objects(s3_client, bucket, prefix, keep)

    for local, _, _ in local_files:  # only once everything is in S3
        local.unlink()
    return {
        "table": export_summary["table"],
        "bucket": bucket,
        "manifest_key": manifest_key,
        "manifest_uri": s3_uri(bucket, manifest_key),
        "part_uris": uris,
        "rows": export_summary["rows"],
        "bytes": export_summary["bytes"],
        "stale_objects_deleted": stale,
    }


@contextmanager
def s3_unreachable_named(s3_client: Any, bucket: str, prefix: str, table: str) -> Iterator[None]:
    """botocore says "Could not connect to the endpoint URL: <url>" and no more: say which
    endpoint and bucket were unreachable and what to check. Still a ConnectionError, so the
    retry policy keeps treating it as transient (tracking_sync.failures)."""
    from botocore.exceptions import ConnectionError as BotocoreConnectionError

    try:
        yield
    except BotocoreConnectionError as error:
        endpoint = getattr(s3_client.meta, "endpoint_url", None) or "the default AWS endpoint"
        raise ConnectionError(
            f"S3 is unreachable at {endpoint} (bucket {bucket}) while uploading {table} to "
            f"s3://{bucket}/{prefix}: {error}. Check that the endpoint answers from the worker "
            "(network, proxy, VPC endpoint) and that the aws_default connection's endpoint_url "
            "and region point at it; transient: the task retries, and the export's parts stay "
            "on TRACKING_SYNC_STAGING_DIR until an upload succeeds."
        ) from error


def delete_stale_objects(s3_client: Any, bucket: str, prefix: str, keep: set[str]) -> int:
    """Delete objects under `prefix` that are not in `keep` (parts of an earlier attempt)."""
    stale = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        stale += [item["Key"] for item in page.get("Contents", []) if item["Key"] not in keep]
    for start in range(0, len(stale), 1000):  # delete_objects takes at most 1000 keys
        batch = [{"Key": key} for key in stale[start : start + 1000]]
        s3_client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    return len(stale)


def expire_old_intervals(s3_client: Any, settings: Settings, table: str, before: datetime) -> list[str]:
    """Remove the S3 prefixes of `table`'s intervals that ended before `before` minus the
    retention; return the labels removed. Keyed on the intervals' own dates (the labels),
    not on the clock, so a rerun removes the same; a full refresh's prefix is reused by
    the next one and stays."""
    horizon = before - timedelta(days=settings.retention_days)
    root = f"{settings.prefix}/{table}/"
    expired = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(
        Bucket=settings.bucket, Prefix=root, Delimiter="/"
    ):
        for common in page.get("CommonPrefixes", []):
            label = common["Prefix"][len(root) :].rstrip("/")
            end = interval_end_of(label)
            if end is not None and end <= horizon:
                delete_stale_objects(s3_client, settings.bucket, common["Prefix"], keep=set())
                expired.append(label)
    return expired


def interval_end_of(label: str) -> datetime | None:
    """The end of the interval a prefix label names (20250301t000000_20250302t000000), or None."""
    matched = _INTERVAL_LABEL.fullmatch(label)
    if not matched:
        return None
    return datetime.strptime(matched.group(1), "%Y%m%dt%H%M%S").replace(tzinfo=UTC)
