"""Upload: publish a run's staged parts in S3 under the load prefix, and write the manifest.

Where the parts are staged is tracking_sync.core.scratch, where they are published
tracking_sync.core.layout. `publish_parts` puts one export's parts (one partition) under the
load prefix: a multipart upload from a file:// scratch area, a server-side copy from an
s3:// one; then it removes the staged copies. `write_manifest` lists every part of every
partition in ONE manifest (mandatory, so COPY fails rather than loading fewer files) and
removes what earlier attempts left under the load prefix and in the scratch area.
`upload_export` is both, for a table exported whole (action_type).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tracking_sync.core.errors import StagingPartMissing
from tracking_sync.core.layout import MANIFEST_NAME
from tracking_sync.core.s3 import (
    delete_stale_objects,
    s3_unreachable_named,
    s3_uri,
    split_s3_uri,
    transfer_config,
)
from tracking_sync.core.settings import Settings


def manifest_document(part_uris: list[str]) -> dict:
    return {"entries": [{"url": uri, "mandatory": True} for uri in part_uris]}


def _missing_part_advice(settings: Settings, export_task: str) -> str:
    area = settings.scratch
    if area.is_local:
        return (
            f"export and upload must see the same staging folder ({area.url}). When they can "
            "run on different workers (Celery, Kubernetes), set TRACKING_SYNC_STAGING_URL="
            "s3://bucket/prefix (docs/scaling.md) or mount one volume on every worker; if the "
            f"folder was cleaned, clear {export_task} of this run with its downstream so it runs "
            "again (upload and load follow)."
        )
    return (
        f"it is no longer in the scratch area {area.url} (removed by hand, by a lifecycle "
        f"rule, or by a later attempt of the same export): clear {export_task} of this run with "
        "its downstream so it runs again (upload and load follow)."
    )


def publish_parts(
    s3_client: Any, settings: Settings, export_summary: dict, export_task: str = "the export task"
) -> dict:
    """Put the parts one export staged under the load prefix; then remove the staged copies.
    Cleared after it succeeded, it finds them published already (their size) and does nothing;
    a part neither staged nor published names `export_task`, the task to clear instead.

    Returns the upload's XCom: table, bucket, part URIs, rows, bytes, partition and the
    staging prefix of the slice (for write_manifest)."""
    area = settings.scratch
    table = export_summary["table"]
    parts = []
    for part in export_summary["parts"]:
        bucket, key = split_s3_uri(part["uri"])
        staged_key = area.key_of(part["staged"])
        if not area.exists(s3_client, staged_key):
            if _published_before(s3_client, bucket, key, part.get("bytes")):
                continue  # this upload ran before (cleared after it succeeded): nothing to do
            raise StagingPartMissing(
                f"scratch part {part['uri']} is not at {part['staged']}: "
                + _missing_part_advice(settings, export_task)
            )
        parts.append((staged_key, bucket, key))
    if not export_summary["parts"]:
        raise StagingPartMissing(f"the export of {table} listed no parts")
    if not parts:
        return _published(export_summary)

    bucket = parts[0][1]
    prefix = parts[0][2].rsplit("/", 1)[0] + "/"
    with s3_unreachable_named(s3_client, bucket, prefix, f"uploading {table} to"):
        _put_parts(s3_client, settings, parts)
        for staged_key, _, _ in parts:  # only once everything is published
            area.delete(s3_client, staged_key)
    return _published(export_summary)


def _published_before(s3_client: Any, bucket: str, key: str, size: int | None) -> bool:
    """The part is in S3 already, as the export wrote it (its size): an earlier run of this
    upload published it and removed the staged copy."""
    from botocore.exceptions import ClientError

    try:
        head = s3_client.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return size is None or head.get("ContentLength") == size


def _published(export_summary: dict) -> dict:
    bucket = split_s3_uri(export_summary["parts"][0]["uri"])[0]
    table = export_summary["table"]
    return {
        "table": table,
        "bucket": bucket,
        "part_uris": [part["uri"] for part in export_summary["parts"]],
        "rows": export_summary["rows"],
        "bytes": export_summary["bytes"],
        "partition": export_summary.get("partition"),
        "scratch_prefix": export_summary.get("scratch_prefix"),
        # Passed on to the publish: what the export saw, what the capture read.
        **{key: export_summary[key] for key in ("snapshot", "capture") if key in export_summary},
    }


def _put_parts(s3_client: Any, settings: Settings, parts: list[tuple[str, str, str]]) -> None:
    """Every part at once through ONE transfer manager: its threads take the chunks of all
    parts from one queue, so a part's last chunks overlap the next part's first ones (one
    upload_file after another leaves the threads idle at each part's end: bench_dag measured
    the stage at 1.25-1.5x plain boto3). Waits for all; the first failure is raised."""
    from boto3.s3.transfer import create_transfer_manager

    area = settings.scratch
    with create_transfer_manager(s3_client, transfer_config()) as manager:
        transfers = []
        for staged_key, part_bucket, key in parts:
            if area.is_local:
                transfers.append(manager.upload(str(area.path_of(staged_key)), part_bucket, key))
            else:  # already in S3: a server-side copy, no bytes through this worker
                source = {"Bucket": area.bucket, "Key": area.root + staged_key}
                transfers.append(manager.copy(source, part_bucket, key))
        for transfer in transfers:
            transfer.result()


def write_manifest(s3_client: Any, settings: Settings, table: str, published: Iterable[dict]) -> dict:
    """ONE manifest listing every part of every partition, in partition order; then remove
    objects under the load prefix that it does not list (earlier attempts, another number
    of partitions) and what is left of the slice in the scratch area.

    Returns the XCom the load reads: bucket, manifest key and URI, part URIs, rows, bytes."""
    published = sorted(published, key=lambda p: (p.get("partition") or {}).get("index", 0))
    uris = [uri for upload in published for uri in upload["part_uris"]]
    if not uris:
        raise StagingPartMissing(f"no part of {table} was uploaded: nothing to load")
    bucket, first_key = split_s3_uri(uris[0])
    prefix = first_key.rsplit("/", 1)[0] + "/"
    outside = [uri for uri in uris if not uri.startswith(s3_uri(bucket, prefix))]
    if outside:
        raise StagingPartMissing(f"parts of {table} outside s3://{bucket}/{prefix}: {outside[:3]}")
    manifest_key = prefix + MANIFEST_NAME
    with s3_unreachable_named(s3_client, bucket, prefix, f"writing the manifest of {table} at"):
        s3_client.put_object(
            Bucket=bucket,
            Key=manifest_key,
            Body=json.dumps(manifest_document(uris), indent=1).encode(),
            ContentType="application/json",
        )
        keep = {split_s3_uri(uri)[1] for uri in uris} | {manifest_key}
        stale = delete_stale_objects(s3_client, bucket, prefix, keep)
        staging_prefixes = {p["scratch_prefix"] for p in published if p.get("scratch_prefix")}
        for scratch_prefix in staging_prefixes:
            settings.scratch.remove_tree(s3_client, scratch_prefix)
    return {
        "table": table,
        "bucket": bucket,
        "manifest_key": manifest_key,
        "manifest_uri": s3_uri(bucket, manifest_key),
        "part_uris": uris,
        "rows": sum(p["rows"] for p in published),
        "bytes": sum(p["bytes"] for p in published),
        "partitions": len(published),
        "stale_objects_deleted": stale,
        "snapshots": [
            {"partition": p.get("partition"), "snapshot": p["snapshot"]}
            for p in published
            if p.get("snapshot")
        ],
        **({"capture": published[0]["capture"]} if published and published[0].get("capture") else {}),
    }


def upload_export(
    s3_client: Any, settings: Settings, export_summary: dict, export_task: str = "the export task"
) -> dict:
    """Publish one export's parts and write their manifest (a table exported whole)."""
    published = publish_parts(s3_client, settings, export_summary, export_task)
    return write_manifest(s3_client, settings, export_summary["table"], [published])
