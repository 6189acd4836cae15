"""Issue 20: missing inputs are classed by cause, and a load makes sure of what its COPY needs.

A staging table, manifest or part that is missing is not a data error: the load makes the
table and the manifest again; a part only the export can make fails at once, naming that
export; a table dropped under the COPY (42P01) is retried. The whole path through Airflow's
scheduler is tests/e2e/test_clear_with_downstream.py.
"""

from __future__ import annotations

import json

import pytest
from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator
from airflow.sdk import RetryAction

from tracking_sync.core.errors import (
    LoadRejected,
    NeedsFix,
    StagedFilesExpired,
    StagedFilesMissing,
    StagingTableMissing,
)
from tracking_sync.load.inputs import ensure_staged_files
from tracking_sync.oncall.failures import RETRY_POLICY
from tracking_sync.operators import ReportingS3ToRedshiftOperator

BUCKET, PREFIX = "bucket", "tracking/action/20250301t000000_20250302t000000/"
PARTS = [f"s3://{BUCKET}/{PREFIX}part-000{i}.csv.zst" for i in range(3)]


class ListingS3:
    """The two calls ensure_staged_files makes, over a dict of keys (the S3 client is not what
    is under test: what the load decides from a listing is)."""

    def __init__(self, keys: set[str]) -> None:
        self.objects = {key: b"" for key in keys}

    def get_paginator(self, name: str):
        assert name == "list_objects_v2"
        objects = self.objects

        class Pages:
            def paginate(self, Bucket: str, Prefix: str):  # noqa: N803 - boto3's names
                return [{"Contents": [{"Key": k} for k in sorted(objects) if k.startswith(Prefix)]}]

        return Pages()

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str) -> None:  # noqa: N803
        self.objects[Key] = Body


def keys(uris: list[str]) -> set[str]:
    return {uri.split("/", 3)[3] for uri in uris}


def test_a_missing_manifest_is_written_again_from_the_uploaded_parts():
    s3 = ListingS3(keys(PARTS))
    made = ensure_staged_files(
        s3, BUCKET, PREFIX + "manifest.json", PARTS, export_task="export_action", run_id="r1"
    )
    assert made and "written again" in made[0]
    manifest = json.loads(s3.objects[PREFIX + "manifest.json"])
    assert [entry["url"] for entry in manifest["entries"]] == PARTS
    assert all(entry["mandatory"] for entry in manifest["entries"])
    again = ensure_staged_files(
        s3, BUCKET, PREFIX + "manifest.json", PARTS, export_task="export_action", run_id="r1"
    )
    assert again == [], "a manifest that is there is left as it is"


def test_a_gone_part_fails_at_once_naming_the_export_to_clear():
    s3 = ListingS3(keys(PARTS[:1] + PARTS[2:]) | {PREFIX + "manifest.json"})
    with pytest.raises(StagedFilesExpired) as raised:
        ensure_staged_files(
            s3, BUCKET, PREFIX + "manifest.json", PARTS, export_task="export_action", run_id="r1"
        )
    message = str(raised.value)
    assert "1 of 3 parts" in message and PARTS[1] in message
    assert "clear export_action of run r1 with its downstream" in message
    assert "\n" not in message, "one line"
    assert isinstance(raised.value, NeedsFix)
    assert RETRY_POLICY.evaluate(raised.value, try_number=1, max_tries=4).action == RetryAction.FAIL


@pytest.mark.parametrize(
    ("copy_error", "expected"),
    [
        ('relation "tracking.action_staging_x" does not exist (42P01)', StagingTableMissing),
        ("Manifest file s3://bucket/x/manifest.json does not exist", StagedFilesMissing),
        ('column "nope" of relation "action_staging_x" does not exist', LoadRejected),
    ],
    ids=["staging table gone", "manifest gone", "a column the files do not have"],
)
def test_copy_errors_are_classed_by_cause(monkeypatch, copy_error, expected):
    def fail(self, context):
        raise RuntimeError(copy_error)

    monkeypatch.setattr(S3ToRedshiftOperator, "execute", fail)
    monkeypatch.setattr("tracking_sync.operators.mask_aws_credentials", lambda conn_id: None)
    monkeypatch.setattr(ReportingS3ToRedshiftOperator, "_load_errors", lambda self, prefix: [])
    operator = ReportingS3ToRedshiftOperator(
        task_id="load_action_staging",
        schema="tracking",
        table="action_staging_x",
        source_table="action",
        s3_bucket="bucket",
        s3_key="x/manifest.json",
        method="REPLACE",
    )
    with pytest.raises(expected) as raised:
        operator.execute.__wrapped__(operator, {})
    decision = RETRY_POLICY.evaluate(raised.value, try_number=1, max_tries=4)
    assert decision.action == (RetryAction.FAIL if expected is LoadRejected else RetryAction.RETRY), decision


def test_a_full_refresh_published_again_after_later_changes_is_refused():
    from datetime import UTC, datetime

    from tracking_sync.core.errors import ReloadSuperseded
    from tracking_sync.core.plan import plan_run
    from tracking_sync.load.publish import refuse_superseded_reload
    from tracking_sync.load.sync_state import SyncState

    planned = plan_run({"mode": "full_refresh"}, None, None, run_after=datetime(2025, 3, 2, tzinfo=UTC))
    plan = planned.with_load("full", capture="logical", slot="tracking_sync_tracking", start_lsn=1000)
    state = SyncState(
        capture="logical", slot="tracking_sync_tracking", applied_lsn=1000, bootstrapped_by="r0"
    )
    refuse_superseded_reload(plan, state)  # its own applied LSN: published again, the same
    refuse_superseded_reload(plan, None)  # a bootstrap
    with pytest.raises(ReloadSuperseded) as raised:
        refuse_superseded_reload(plan, SyncState("logical", "tracking_sync_tracking", 2000, "r0"))
    message = str(raised.value)
    assert "Nothing was changed" in message and "airflow dags trigger postgres_to_redshift" in message
    assert "\n" not in message
    assert RETRY_POLICY.evaluate(raised.value, try_number=1, max_tries=4).action == RetryAction.FAIL
