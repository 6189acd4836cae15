"""A staging disk that fills up during the export: the run fails at once (no retry would find
more space), naming the folder and TRACKING_SYNC_STAGING_DIR; no partial part is left behind
to be uploaded, and the target is unchanged.

The staging folder is a 16 KiB tmpfs, mounted by the test (it needs root, or CAP_SYS_ADMIN).
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest

from tests.dag_helpers import run_dag
from tests.pipeline_helpers import fetch_rows, target_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def tiny_staging_dir(tmp_path, monkeypatch):
    """TRACKING_SYNC_STAGING_DIR on a 16 KiB tmpfs: room for action_type's part, not action's."""
    folder = tmp_path / "tiny-staging"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}"
        )
    try:
        monkeypatch.setenv("TRACKING_SYNC_STAGING_DIR", str(folder))
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def test_a_full_staging_disk_fails_at_once_naming_the_folder_and_the_setting(
    synced, tiny_staging_dir, source, target, capfd, caplog
):
    (rows,) = fetch_rows(source, "select count(*) from action")[0]
    assert rows >= 2_000, "the export must not fit in 16 KiB"
    before = target_rows(target)
    capfd.readouterr()

    run = run_dag(
        synced, logical_date=datetime(2025, 3, 8, tzinfo=UTC), conf={"mode": "full_refresh"}, expect="failed"
    )

    output = "".join(capfd.readouterr()) + caplog.text
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["export_action"] == "failed" and states["upload_action"] == "upstream_failed"
    (on_call,) = {
        line.split("TRACKING_SYNC FAILED", 1)[1]
        for line in output.splitlines()
        if "TRACKING_SYNC FAILED" in line and "task=export_action " in line
    }
    assert f"what=StagingDiskFull: the staging folder {tiny_staging_dir}/" in on_call, on_call
    assert "ran out of space while exporting action" in on_call and "TRACKING_SYNC_STAGING_DIR" in on_call
    assert "TRACKING_SYNC RETRY" not in output, "a full disk is not retried"
    assert list(tiny_staging_dir.rglob("*.csv.zst")) == [], "no partial part is left to upload"
    assert target_rows(target) == before


def test_with_s3_staging_a_full_temp_dir_fails_at_once_naming_tmpdir(
    synced, tiny_staging_dir, stack, source, target, capfd, caplog, monkeypatch
):
    """With TRACKING_SYNC_STAGING_URL=s3://..., the export spools parts in the worker's temp
    dir: when that fills up, the error names it (TMPDIR) and what to do, and nothing of the
    attempt is left staged in S3."""
    import tempfile
    import uuid

    prefix = f"staging-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TRACKING_SYNC_STAGING_URL", f"s3://{stack.s3.bucket}/{prefix}")
    monkeypatch.setattr(tempfile, "tempdir", str(tiny_staging_dir))  # the task's TMPDIR
    before = target_rows(target)
    capfd.readouterr()

    run = run_dag(
        synced, logical_date=datetime(2025, 3, 8, tzinfo=UTC), conf={"mode": "full_refresh"}, expect="failed"
    )

    output = "".join(capfd.readouterr()) + caplog.text
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["export_action"] == "failed" and states["upload_action"] == "upstream_failed"
    (on_call,) = {
        line.split("TRACKING_SYNC FAILED", 1)[1]
        for line in output.splitlines()
        if "TRACKING_SYNC FAILED" in line and "task=export_action " in line
    }
    assert f"what=StagingDiskFull: the staging folder {tiny_staging_dir}/tracking_sync-action-" in on_call, (
        on_call
    )
    assert "worker's temp dir (TMPDIR)" in on_call and "TRACKING_SYNC_PART_MB" in on_call, on_call
    listing = stack.s3.client().list_objects_v2(Bucket=stack.s3.bucket, Prefix=prefix)
    assert listing.get("KeyCount", 0) == 0, f"left staged: {listing.get('Contents')}"
    assert target_rows(target) == before
