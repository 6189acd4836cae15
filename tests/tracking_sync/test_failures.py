"""Which failures retry: NeedsFix errors fail at once, transient ones retry with a line."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.sdk import RetryAction

from tracking_sync.core.errors import InvalidParams, LoadRejected, ParityCheckError, StagingDiskFull
from tracking_sync.oncall.failures import RETRY_POLICY, on_retry_callback, retry_delay_bounds


@pytest.mark.parametrize(
    "error",
    [InvalidParams("x"), LoadRejected("x"), StagingDiskFull("x"), ParityCheckError("x")],
    ids=lambda e: type(e).__name__,
)
def test_errors_that_need_a_fix_fail_without_retries(error):
    decision = RETRY_POLICY.evaluate(error, try_number=1, max_tries=4)
    assert decision.action == RetryAction.FAIL
    assert "retry would meet it again" in decision.reason


def test_transient_errors_retry():
    import botocore.exceptions
    import psycopg2

    for error in (
        psycopg2.OperationalError("connection refused"),
        ConnectionRefusedError(),
        botocore.exceptions.EndpointConnectionError(endpoint_url="http://s3"),
    ):
        assert RETRY_POLICY.evaluate(error, try_number=1, max_tries=4).action == RetryAction.RETRY, error
    assert RETRY_POLICY.evaluate(KeyError("x"), 1, 4).action == RetryAction.DEFAULT


def _task(**overrides):
    defaults = dict(
        retry_delay=timedelta(minutes=2),
        retry_exponential_backoff=True,
        max_retry_delay=timedelta(minutes=30),
        retries=3,
    )
    return SimpleNamespace(**(defaults | overrides))


def test_the_wait_before_a_retry_doubles_and_is_capped():
    task = _task()
    assert retry_delay_bounds(task, 1) == (timedelta(seconds=120), timedelta(seconds=239))
    assert retry_delay_bounds(task, 2) == (timedelta(seconds=240), timedelta(seconds=479))
    assert retry_delay_bounds(task, 5) == (timedelta(minutes=30), timedelta(minutes=30))
    assert retry_delay_bounds(_task(retry_exponential_backoff=False), 3) == (timedelta(minutes=2),) * 2


def test_each_retry_logs_one_line_with_what_and_when(caplog):
    ti = SimpleNamespace(dag_id="postgres_to_redshift", task_id="upload_action", run_id="r1", try_number=1)
    context = {
        "ti": ti,
        "task": _task(),
        "exception": ConnectionRefusedError("[Errno 111] Connection refused"),
        "data_interval_start": datetime(2025, 3, 1, tzinfo=UTC),
        "data_interval_end": datetime(2025, 3, 2, tzinfo=UTC),
    }
    with caplog.at_level(logging.WARNING, logger="tracking_sync.oncall.failures"):
        on_retry_callback(context)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == (
        "TRACKING_SYNC RETRY dag=postgres_to_redshift task=upload_action interval=2025-03-01T00:00:00+00:00 "
        "-> 2025-03-02T00:00:00+00:00 run=r1 try 1 of 4 failed: ConnectionRefusedError: [Errno 111] "
        "Connection refused -- transient, retried in 2 min to 4.0 min"
    )
