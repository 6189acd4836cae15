"""A full refresh split into partitions, through the real DAG (dag.test()) on the local stack:
mapped export and upload tasks, one manifest, one COPY, one publish; with the parts staged in
S3 (TRACKING_SYNC_STAGING_URL=s3://...) and in a local folder; bad settings refused by
plan_run before anything moves."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest

from tests.dag_helpers import run_dag
from tests.pipeline_helpers import assert_same_rows, fetch_rows, source_rows, target_rows

pytestmark = pytest.mark.integration

LOGICAL_DATE = datetime(2025, 3, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_rows(stack):
    from devstack.demo_data import generate

    return generate(
        stack.source_dsn, rows=20_000, seed=11, users=200, period_start="2025-03-01", period_days=7
    )


@pytest.fixture
def s3_staging(stack, monkeypatch):
    """Parts staged under a prefix of the test's own in the stack's S3; no local staging folder."""
    prefix = f"staging-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TRACKING_SYNC_STAGING_URL", f"s3://{stack.s3.bucket}/{prefix}")
    return prefix


def task_instances(run) -> Counter:
    return Counter(ti.task_id for ti in run.get_task_instances())


def manifest_of(stack, run) -> list[str]:
    (uploaded,) = [ti for ti in run.get_task_instances() if ti.task_id == "write_action_manifest"]
    key = uploaded.xcom_pull(task_ids="write_action_manifest", key="manifest_key")
    body = stack.s3.client().get_object(Bucket=stack.s3.bucket, Key=key)["Body"].read()
    return [entry["url"] for entry in json.loads(body)["entries"]]


def test_a_full_refresh_in_four_partitions_staged_in_s3_equals_the_source(
    pipeline_dag, stack, demo_rows, s3_staging, source, target, monkeypatch
):
    monkeypatch.setenv("TRACKING_SYNC_PARTITIONS", "4")  # the deployment's default, param empty
    monkeypatch.setenv("TRACKING_SYNC_PART_MB", "0.5")  # several parts per partition

    run = run_dag(pipeline_dag, logical_date=LOGICAL_DATE, conf={"mode": "full_refresh"})

    assert_same_rows(source_rows(source), target_rows(target), "after a full refresh in 4 partitions")
    counts = task_instances(run)
    assert counts["export_action"] == counts["upload_action"] == 4, counts
    assert counts["load_action_staging"] == counts["write_action_manifest"] == counts["validate"] == 1
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states
    # One manifest listing every part of every partition, which the one COPY read.
    parts = manifest_of(stack, run)
    by_partition = Counter(uri.rsplit("/", 1)[1][:8] for uri in parts)
    assert set(by_partition) == {"part-00-", "part-01-", "part-02-", "part-03-"}, parts
    assert sum(by_partition.values()) > 4, "several parts per partition"
    # Partitions of about equal rows (pg_stats' histogram of action.id).
    rows = [
        ti.xcom_pull(task_ids="export_action", map_indexes=ti.map_index)["rows"]
        for ti in run.get_task_instances()
        if ti.task_id == "export_action"
    ]
    assert sum(rows) == demo_rows and max(rows) < 1.2 * min(rows), rows
    listing = stack.s3.client().list_objects_v2(Bucket=stack.s3.bucket, Prefix=s3_staging)
    assert listing.get("KeyCount", 0) == 0, "every staged part is removed once published"
    staging = fetch_rows(target, "select tablename from pg_tables where tablename like 'action_staging%%'")
    assert staging == []


def test_one_partition_is_the_full_refresh_as_before(
    pipeline_dag, stack, demo_rows, source, target, monkeypatch
):
    monkeypatch.setenv("TRACKING_SYNC_PARTITIONS", "4")  # overridden by the run's param
    with source.cursor() as cursor:  # a change, so that the reload is seen
        cursor.execute("update action set query = 'one partition' where id = (select max(id) from action)")
    source.commit()

    run = run_dag(pipeline_dag, logical_date=LOGICAL_DATE, conf={"mode": "full_refresh", "partitions": 1})

    assert_same_rows(source_rows(source), target_rows(target), "after a full refresh in 1 partition")
    assert task_instances(run)["export_action"] == 1
    parts = [uri.rsplit("/", 1)[1] for uri in manifest_of(stack, run)]
    assert parts[0] == "part-0000.csv.zst" and all(p.startswith("part-0") for p in parts), parts


def test_a_nightly_run_is_one_partition_whatever_the_default(
    pipeline_dag, demo_rows, source, target, monkeypatch
):
    monkeypatch.setenv("TRACKING_SYNC_PARTITIONS", "4")
    with source.cursor() as cursor:
        cursor.execute(
            "update action set query = 'nightly' where id = (select max(id) from action "
            "where action_time >= '2025-03-03' and action_time < '2025-03-04')"
        )
    source.commit()
    run = run_dag(pipeline_dag, logical_date=datetime(2025, 3, 4, tzinfo=UTC))
    assert task_instances(run)["export_action"] == 1
    assert_same_rows(source_rows(source), target_rows(target), "after a nightly run")


def assert_refused_by_plan_run(run, stack, prefix: str, capfd_text: str, message: str) -> None:
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["plan_run"] == "failed", states
    assert {state for task_id, state in states.items() if task_id != "plan_run"} == {"upstream_failed"}
    assert message in capfd_text, capfd_text[-3000:]
    listing = stack.s3.client().list_objects_v2(Bucket=stack.s3.bucket, Prefix=prefix)
    assert listing.get("KeyCount", 0) == 0, "nothing was written"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://no-such-bucket-{n}/staging", "is not writable from this worker (NoSuchBucket"),
        ("gs://bucket-{n}/staging", "the scheme 'gs' is not one of file://, s3://"),
        ("file://{not_a_folder}/staging", "is not writable from this worker (NotADirectoryError"),
    ],
    ids=["s3-bucket-missing", "unknown-scheme", "file-not-writable"],
)
def test_a_staging_url_that_cannot_be_used_fails_plan_run_before_data_moves(
    pipeline_dag, stack, tmp_path, monkeypatch, capfd, url, message
):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    prefix = f"refused-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TRACKING_SYNC_PREFIX", prefix)
    monkeypatch.setenv(
        "TRACKING_SYNC_STAGING_URL", url.format(n=uuid.uuid4().hex[:6], not_a_folder=not_a_folder)
    )
    capfd.readouterr()
    run = run_dag(
        pipeline_dag,
        logical_date=datetime(2031, 2, 1, tzinfo=UTC),
        conf={"mode": "full_refresh"},
        expect="failed",
    )
    output = "".join(capfd.readouterr())
    assert_refused_by_plan_run(run, stack, prefix, output, message)
    assert "TRACKING_SYNC_STAGING_URL" in output


def test_default_partitions_above_the_cap_fail_plan_run_before_data_moves(
    pipeline_dag, stack, monkeypatch, capfd
):
    prefix = f"refused-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TRACKING_SYNC_PREFIX", prefix)
    monkeypatch.setenv("TRACKING_SYNC_PARTITIONS", "65")
    capfd.readouterr()
    run = run_dag(
        pipeline_dag,
        logical_date=datetime(2031, 2, 2, tzinfo=UTC),
        conf={"mode": "full_refresh"},
        expect="failed",
    )
    output = "".join(capfd.readouterr())
    assert_refused_by_plan_run(
        run, stack, prefix, output, "TRACKING_SYNC_PARTITIONS='65' is not a whole number from 1 to 64"
    )
