"""S3 down during the upload: the run fails with an error naming the unreachable endpoint and
the bucket, the target is unchanged, and the rerun once S3 is back repairs the interval.

S3 is the stack's moto server, stopped and started again on the same port (its objects are
gone after the restart, as after an outage that lost them: the rerun uploads everything).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from airflow.sdk import RetryAction

from tests.dag_helpers import run_dag
from tests.pipeline_helpers import assert_same_rows, change_source_within, source_rows, target_rows
from tracking_sync.oncall.failures import RETRY_POLICY

pytestmark = pytest.mark.integration


def day(n: int) -> datetime:
    return datetime(2025, 3, n, tzinfo=UTC)


def test_s3_down_during_the_upload_fails_naming_it_and_a_rerun_repairs(
    synced, stack, source, target, capfd, caplog
):
    change_source_within(source, day(2))
    before = target_rows(target)
    endpoint, bucket = stack.s3.endpoint_url, stack.s3.bucket
    capfd.readouterr()
    stack.s3.stop()
    try:
        run = run_dag(synced, logical_date=day(3), expect="failed")
    finally:
        stack.s3.start()
    assert stack.s3.endpoint_url == endpoint, "S3 came back on another port: the stand-in would not see it"
    output = "".join(capfd.readouterr()) + caplog.text

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["export_action"] == "success"
    assert states["upload_action"] == "failed"
    assert states["replace_action_rows"] == "upstream_failed"
    on_call = [
        line
        for line in output.splitlines()
        if "TRACKING_SYNC FAILED" in line and "task=upload_action " in line
    ]
    assert on_call, output[-3000:]
    # What on-call reads: what was unreachable (the endpoint), the bucket, and what to check;
    # a ConnectionError, which the retry policy retries (the DAG's retries are off in tests).
    assert f"what=ConnectionError: S3 is unreachable at {endpoint} (bucket {bucket})" in on_call[0], on_call[
        0
    ]
    assert "aws_default connection's endpoint_url" in on_call[0], on_call[0]
    assert any(
        rule.action == RetryAction.RETRY and rule.matches(ConnectionError()) for rule in RETRY_POLICY.rules
    ), "an unreachable S3 is transient"
    assert target_rows(target) == before, "a run that failed its upload changed the target"

    run_dag(synced, logical_date=day(3))
    assert_same_rows(source_rows(source), target_rows(target), "after the rerun with S3 back")
