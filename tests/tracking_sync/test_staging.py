"""Staging and upload against the stack's S3, with a file:// and an s3:// staging area:
manifest, rerun overwrite, partitions in one manifest, missing parts, and export and upload
in different processes that share no disk."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.pipeline_helpers import insert_actions, tricky_actions
from tracking_sync.core.errors import MissingSetting, StagingPartMissing
from tracking_sync.core.plan import plan_run
from tracking_sync.core.scratch import ScratchArea
from tracking_sync.extract.export import export_for_run
from tracking_sync.extract.partitions import WHOLE, partitions_from_cuts
from tracking_sync.stage.upload import publish_parts, upload_export, write_manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
DAY_PLAN = plan_run({}, datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))
FULL_PLAN = plan_run({"mode": "full_refresh"}, None, None, run_after=datetime(2025, 3, 2, tzinfo=UTC))


@pytest.fixture(params=["file", "s3"])
def staged_settings(request, settings):
    """The test's settings with a file:// staging area (its tmp folder) or an s3:// one (a
    prefix of the test's own in the stack's bucket)."""
    if request.param == "file":
        return settings
    return dataclasses.replace(settings, scratch_url=f"s3://{settings.bucket}/{settings.prefix}-staging")


def export(source, settings, s3_client, part_bytes, plan=DAY_PLAN, partition=WHOLE, attempt=1):
    settings = dataclasses.replace(settings, part_bytes=part_bytes)
    return export_for_run(
        "action", plan, settings, source, partition=partition, attempt=attempt, s3_client=s3_client
    )


def keys_under(s3_client, bucket, prefix):
    listing = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def staged_files(settings, s3_client) -> list[str]:
    """Everything left in the staging area under the test's prefix."""
    area = settings.scratch
    if area.is_local:
        root = area.path_of(settings.prefix)
        return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []
    return keys_under(s3_client, area.bucket, area.root)


def test_upload_writes_parts_and_a_mandatory_manifest(source, staged_settings, s3_client):
    settings = staged_settings
    insert_actions(source, tricky_actions())
    summary = export(source, settings, s3_client, part_bytes=16 * 1024)
    assert len(summary["parts"]) > 1
    prefix = f"{settings.prefix}/action/20250301t000000_20250302t000000/"
    assert all(p["uri"].startswith(f"s3://{settings.bucket}/{prefix}") for p in summary["parts"])
    staged_root = settings.scratch.url_of(prefix + "whole/try-1/")
    assert all(p["staged"].startswith(staged_root) for p in summary["parts"]), summary["parts"]

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
    assert staged_files(settings, s3_client) == [], "the staged copies are removed once published"


def test_a_rerun_overwrites_and_drops_parts_of_the_earlier_attempt(source, staged_settings, s3_client):
    settings = staged_settings
    insert_actions(source, tricky_actions())
    first = upload_export(s3_client, settings, export(source, settings, s3_client, part_bytes=16 * 1024))
    second = upload_export(
        s3_client, settings, export(source, settings, s3_client, part_bytes=1 << 30, attempt=2)
    )

    assert len(first["part_uris"]) > 1 and len(second["part_uris"]) == 1
    assert second["stale_objects_deleted"] == len(first["part_uris"]) - 1
    prefix = second["manifest_key"].rsplit("/", 1)[0] + "/"
    assert len(keys_under(s3_client, settings.bucket, prefix)) == 2  # one part + manifest


def test_an_export_removes_what_an_earlier_attempt_of_its_partition_staged(
    source, staged_settings, s3_client
):
    settings = staged_settings
    insert_actions(source, tricky_actions())
    export(source, settings, s3_client, part_bytes=16 * 1024, attempt=1)  # never uploaded
    again = export(source, settings, s3_client, part_bytes=16 * 1024, attempt=2)
    left = staged_files(settings, s3_client)
    assert left and all("/whole/try-2/" in name for name in left), left
    assert len(left) == len(again["parts"])


def test_partitions_are_published_apart_and_listed_in_one_manifest(source, staged_settings, s3_client):
    """Each partition's upload publishes its own parts; one manifest lists every part of every
    partition in partition order, and what an earlier attempt with another number of
    partitions left under the load prefix goes."""
    settings = staged_settings
    insert_actions(source, tricky_actions())
    earlier = upload_export(s3_client, settings, export(source, settings, s3_client, 1 << 30, FULL_PLAN))
    partitions = partitions_from_cuts([5, 12])
    published = [
        publish_parts(
            s3_client, settings, export(source, settings, s3_client, 16 * 1024, FULL_PLAN, partition)
        )
        for partition in reversed(partitions)  # in any order, as mapped tasks finish
    ]

    written = write_manifest(s3_client, settings, "action", published)

    names = [uri.rsplit("/", 1)[1] for uri in written["part_uris"]]
    assert names[0].startswith("part-00-") and names[-1].startswith("part-02-"), names
    assert names == sorted(names), "partition order, then part order"
    assert written["rows"] == len(tricky_actions()) and written["partitions"] == 3
    manifest = json.loads(
        s3_client.get_object(Bucket=settings.bucket, Key=written["manifest_key"])["Body"].read()
    )
    assert [entry["url"] for entry in manifest["entries"]] == written["part_uris"]
    prefix = written["manifest_key"].rsplit("/", 1)[0] + "/"
    assert keys_under(s3_client, settings.bucket, prefix) == sorted(
        [written["manifest_key"]] + [uri.split("/", 3)[3] for uri in written["part_uris"]]
    )
    assert earlier["part_uris"][0] not in written["part_uris"], "the unpartitioned part is gone"
    assert written["stale_objects_deleted"] == 1
    assert staged_files(settings, s3_client) == []


def test_a_missing_local_part_names_the_part_and_the_s3_staging_url(source, settings, s3_client):
    summary = export(source, settings, s3_client, part_bytes=1 << 20)
    Path(settings.scratch.path_of(settings.scratch.key_of(summary["parts"][0]["staged"]))).unlink()
    with pytest.raises(StagingPartMissing) as error:
        upload_export(s3_client, settings, summary)
    message = str(error.value)
    assert summary["parts"][0]["uri"] in message and summary["parts"][0]["staged"] in message
    assert "TRACKING_SYNC_STAGING_URL=s3://bucket/prefix" in message, message


def test_export_and_upload_in_processes_that_share_no_disk(stack, source, settings, s3_client, tmp_path):
    """The export runs in a process of its own, with its own temp dir, which is deleted once
    it is done (another machine's disk); the upload, here, with another temp dir, publishes
    the parts from the s3:// staging area alone."""
    insert_actions(source, tricky_actions())
    settings = dataclasses.replace(
        settings, scratch_url=f"s3://{settings.bucket}/{settings.prefix}-staging", part_bytes=16 * 1024
    )
    worker_tmp = tmp_path / "worker-a-tmp"
    worker_tmp.mkdir()
    script = """
import dataclasses, json, sys
from pathlib import Path
import psycopg2
from devstack.s3 import LocalS3
from tracking_sync.core.settings import Settings
from tracking_sync.extract.export import export_for_run
from tracking_sync.core.plan import RunPlan
args = json.loads(sys.argv[1])
settings = Settings(**{**args["settings"], "scratch_dir": Path(args["settings"]["scratch_dir"])})
client = LocalS3(port=args["s3_port"]).client()
summary = export_for_run("action", RunPlan.from_xcom(args["plan"]), settings,
                         psycopg2.connect(args["dsn"]), s3_client=client)
print(json.dumps(summary))
"""
    args = {
        "settings": {**dataclasses.asdict(settings), "scratch_dir": str(settings.scratch_dir)},
        "plan": DAY_PLAN.to_xcom(),
        "dsn": stack.source_dsn,
        "s3_port": stack.s3.port,
    }
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(args)],
        env={
            **os.environ,
            "TMPDIR": str(worker_tmp),
            "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'plugins'}",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert len(summary["parts"]) > 1 and all(p["staged"].startswith("s3://") for p in summary["parts"])
    assert list(worker_tmp.iterdir()) == [], "the export left nothing on its worker's disk"
    worker_tmp.rmdir()  # that worker's disk is gone
    assert not settings.scratch_dir.exists(), "no local staging folder was used"

    uploaded = upload_export(s3_client, settings, summary)

    assert uploaded["rows"] == 15 and len(uploaded["part_uris"]) == len(summary["parts"])
    for uri in uploaded["part_uris"]:
        bucket, key = uri[5:].split("/", 1)
        assert s3_client.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    assert staged_files(settings, s3_client) == []


# --- the staging URL ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("gs://bucket/prefix", "the scheme 'gs' is not one of file://, s3://"),
        ("/var/staging", "the scheme '(none)' is not one of file://, s3://"),
        ("file://relative/folder", "is not a file URL of an absolute folder"),
        ("s3:///prefix", "names no bucket"),
    ],
)
def test_a_bad_staging_url_says_what_is_allowed(url, message):
    with pytest.raises(MissingSetting, match="TRACKING_SYNC_STAGING_URL=") as error:
        ScratchArea.parse(url)
    assert message in str(error.value)


def test_staging_urls_name_their_parts_and_back():
    area = ScratchArea.parse("s3://bucket/some/prefix/")
    assert (area.bucket, area.root) == ("bucket", "some/prefix/")
    assert (
        area.url_of("p/action/x/part-0000.csv.zst") == "s3://bucket/some/prefix/p/action/x/part-0000.csv.zst"
    )
    assert area.key_of(area.url_of("a b/c")) == "a b/c"
    local = ScratchArea.parse("file:///srv/staging")
    assert local.is_local and local.url_of("a b/c") == "file:///srv/staging/a%20b/c"
    assert local.key_of(local.url_of("a b/c")) == "a b/c"
    with pytest.raises(MissingSetting, match="ran with different TRACKING_SYNC_STAGING_URL"):
        local.key_of("file:///elsewhere/a")


def test_a_staging_area_that_cannot_be_written_is_refused_by_the_probe(s3_client, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    for url in (a_file.as_uri() + "/staging", "s3://no-such-bucket-here/prefix"):
        with pytest.raises(MissingSetting, match="is not writable from this worker") as error:
            ScratchArea.parse(url).probe(s3_client, "run")
        assert "TRACKING_SYNC_STAGING_URL" in str(error.value) and "nothing has moved yet" in str(error.value)
    ScratchArea.parse((tmp_path / "ok").as_uri()).probe(None, "manual__2025-03-02T00:00:00+00:00")
    assert list((tmp_path / "ok").iterdir()) == [], "the probe leaves nothing behind"


def test_an_upload_cleared_after_it_succeeded_finds_its_parts_published(source, settings, s3_client):
    """Issue 20: the upload removed the staged copies once it had published them; cleared and
    run again, it finds each part in S3 as the export wrote it and returns the same XCom. A
    part neither staged nor published fails at once, naming the export task to clear."""
    insert_actions(source, tricky_actions())
    summary = export(source, settings, s3_client, part_bytes=16 * 1024)
    first = publish_parts(s3_client, settings, summary, "export_action (map index 0)")
    assert staged_files(settings, s3_client) == [], "the staged copies are gone"
    assert publish_parts(s3_client, settings, summary, "export_action (map index 0)") == first

    bucket, key = summary["parts"][-1]["uri"][len("s3://") :].split("/", 1)
    s3_client.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(StagingPartMissing) as error:
        publish_parts(s3_client, settings, summary, "export_action (map index 0)")
    assert "clear export_action (map index 0) of this run with its downstream" in str(error.value)
