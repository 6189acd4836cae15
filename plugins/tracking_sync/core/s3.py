"""S3 keys and the few S3 calls every stage shares (boto3 client of the aws_default connection)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The setting naming the scratch area, quoted in errors about it (tracking_sync.core.scratch).
SCRATCH_SETTING = "TRACKING_SYNC_STAGING_URL"

# Measured against S3 here: 16 MiB parts on 4 threads beat single-part and 64 MiB parts.
MULTIPART_CHUNK_BYTES = 16 * 1024 * 1024
UPLOAD_THREADS = 4


def transfer_config() -> Any:
    """boto3's managed-transfer settings for every part put in S3."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=MULTIPART_CHUNK_BYTES,
        multipart_chunksize=MULTIPART_CHUNK_BYTES,
        max_concurrency=UPLOAD_THREADS,
    )


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def delete_stale_objects(s3_client: Any, bucket: str, prefix: str, keep: set[str]) -> int:
    """Delete objects under `prefix` that are not in `keep` (parts of an earlier attempt)."""
    stale = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        stale += [item["Key"] for item in page.get("Contents", []) if item["Key"] not in keep]
    for start in range(0, len(stale), 1000):  # delete_objects takes at most 1000 keys
        batch = [{"Key": key} for key in stale[start : start + 1000]]
        s3_client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    return len(stale)


@contextmanager
def s3_unreachable_named(s3_client: Any, bucket: str, prefix: str, doing: str) -> Iterator[None]:
    """botocore says "Could not connect to the endpoint URL: <url>" and no more: say which
    endpoint and bucket were unreachable, while doing what, and what to check. Still a
    ConnectionError, so the retry policy keeps treating it as transient
    (tracking_sync.oncall.failures)."""
    from botocore.exceptions import ConnectionError as BotocoreConnectionError

    try:
        yield
    except BotocoreConnectionError as error:
        endpoint = getattr(s3_client.meta, "endpoint_url", None) or "the default AWS endpoint"
        raise ConnectionError(
            f"S3 is unreachable at {endpoint} (bucket {bucket}) while {doing} "
            f"s3://{bucket}/{prefix}: {error}. Check that the endpoint answers from the worker "
            "(network, proxy, VPC endpoint) and that the aws_default connection's endpoint_url "
            "and region point at it; transient: the task retries, and the parts already staged "
            f"stay in the scratch area ({SCRATCH_SETTING}) until an upload succeeds."
        ) from error
