"""upload_export against the stack's S3: manifest, rerun overwrite, missing parts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.pipeline_helpers import insert_actions, tricky_actions
from tracking_sync.exceptions import StagingPartMissing
from tracking_sync.export import describe_export, export_table
from tracking_sync.layout import staging_directory
from tracking_sync.plan import RunSlice
from tracking_sync.staging import upload_export
from tracking_sync.tables import ACTION

DAY = RunSlice(
    full_refresh=False,
    start=datetime(2025, 3, 1, tzinfo=UTC),
    end=datetime(2025, 3, 2, tzinfo=UTC),
)


def export(source, settings, part_bytes):
    directory = staging_directory(settings, "action", DAY)
    result = export_table(source, ACTION, DAY, directory, part_bytes=part_bytes)
    return describe_export(settings, DAY, result)


def keys_under(s3_client, bucket, prefix):
    listing = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_upload_writes_parts_and_a_mandatory_manifest(source, settings, s3_client):
    insert_actions(source, tricky_actions())
    summary = export(source, settings, part_bytes=16 * 1024)
    assert len(summary["parts"]) > 1
    prefix = f"{settings.prefix}/action/20250301t000000_20250302t000000/"
    assert all(p["uri"].startswith(f"s3://{settings.bucket}/{prefix}") for p in summary["parts"])

    uploaded = upload_export(s3_client, settings, summary)

    assert uploaded["manifest_uri"] == f"s3://{settings.bucket}/{prefix}manifest.json"
    assert uploaded["rows"] == 15  # the tricky rows before midnight of 2025-03-01
    manifest = json.loads(
        s3_client.get_object(Bucket=settings.bucket, Key=uploaded["manifest_key"])["Body"].read()
    )
    assert manifest == {"entries": [{"url": p["uri"], "mandatory": True} for p in summary["parts"]]}
    assert keys_under(s3_client, settings.bucket, prefix) == sorted(
        [uploaded["manifest_key"]] + [p["uri"].split("/", 3)[3] for p in summary["parts"]]
    )
    assert not any(staging_directory(settings, "action", DAY).iterdir()), "local parts removed"


def test_a_rerun_overwrites_and_drops_parts_of_the_earlier_attempt(source, settings, s3_client):
    insert_actions(source, tricky_actions())
    first = upload_export(s3_client, settings, export(source, settings, part_bytes=16 * 1024))
    second = upload_export(s3_client, settings, export(source, settings, part_bytes=1 << 30))

    assert len(first["part_uris"]) > 1 and len(second["part_uris"]) == 1
    assert second["stale_objects_deleted"] == len(first["part_uris"]) - 1
    prefix = second["manifest_key"].rsplit("/", 1)[0] + "/"
    assert len(keys_under(s3_client, settings.bucket, prefix)) == 2  # one part + manifest


def test_a_missing_part_names_the_part_and_the_setting(source, settings, s3_client):
    summary = export(source, settings, part_bytes=1 << 20)
    for path in staging_directory(settings, "action", DAY).iterdir():
        path.unlink()
    with pytest.raises(StagingPartMissing) as error:
        upload_export(s3_client, settings, summary)
    message = str(error.value)
    assert summary["parts"][0]["uri"] in message
    assert "TRACKING_SYNC_STAGING_DIR" in message and "shared storage" in message
