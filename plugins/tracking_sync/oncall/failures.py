"""Which failures are retried: data and configuration errors fail at once, transient ones retry.

Airflow's retry policy (evaluated in the task process, with the real exception) fails a
task at once when the pipeline raised a NeedsFix error (bad params, a COPY that rejected
rows, a staged part gone for good, a full staging disk, a malformed check...) or a database
or S3 refused a privilege or a login (tracking_sync.oncall.refusals): a retry would meet the
same error minutes later, and on-call would hear of it only after the last try. A missing
input a task can get again (a staging table, a manifest) is not a data error: the task
recreates it, or it is retried. Every other error keeps the DAG's retries with exponential
backoff, and each retry logs one line saying what failed and when it will be tried again.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryDecision, RetryRule

from tracking_sync.oncall.notifications import first_line, run_label
from tracking_sync.oncall.refusals import find_refusal, refusal_message

log = logging.getLogger(__name__)

# Errors a retry can cure: a refused or dropped connection, a timeout, throttling.
TRANSIENT_ERRORS = [
    "builtins.ConnectionError",
    "builtins.TimeoutError",
    "psycopg2.OperationalError",
    "redshift_connector.InterfaceError",
    "redshift_connector.OperationalError",
    "botocore.exceptions.ConnectionError",
    "botocore.exceptions.ReadTimeoutError",
    "tracking_sync.core.errors.StagedFilesMissing",
    # A missing input is not a data error (issue 20): the load recreates its staging table
    # before the COPY; one dropped in between is retried, and the retry creates it again.
    "tracking_sync.core.errors.StagingTableMissing",
]

# The delay between tries of a run that waited for another run's bootstrap of the target: each
# try waits inside plan_run first (tracking_sync.planning.wait_for_bootstrap, up to 90 min).
BOOTSTRAP_WAIT = timedelta(minutes=1)


class RefusalsFailPolicy(ExceptionRetryPolicy):
    """The rules below, after one that RetryRule cannot say (it matches by class, and a
    refused privilege is a psycopg2 ProgrammingError, a redshift_connector ProgrammingError
    or InterfaceError, a botocore ClientError, like many errors that heal): a refused
    privilege or login (SQLSTATE 42501, class 28, S3 AccessDenied) fails at once, on every
    task, the provider's operators' too (tracking_sync.oncall.refusals).

    Airflow serializes only that a task has a retry policy, and evaluates the task's own
    object in the worker: a subclass is kept as it is."""

    def evaluate(self, exception, try_number, max_tries, context=None):  # type: ignore[override]
        refusal = find_refusal(exception)
        if refusal is not None:
            return RetryDecision.fail(reason=refusal_message(refusal, role=None))
        return super().evaluate(exception, try_number, max_tries, context)


RETRY_POLICY = RefusalsFailPolicy(
    rules=[
        RetryRule(
            exception="tracking_sync.core.errors.NeedsFix",
            action=RetryAction.FAIL,
            reason="a data or configuration error: a retry would meet it again, so it fails now",
        ),
        RetryRule(
            exception="tracking_sync.core.errors.BootstrapInProgress",
            action=RetryAction.RETRY,
            retry_delay=BOOTSTRAP_WAIT,
            reason="another run is bootstrapping the target: this one waits for it",
        ),
        RetryRule(
            exception=TRANSIENT_ERRORS,
            action=RetryAction.RETRY,
            reason="transient (connection, timeout): retried with backoff",
        ),
    ],
    default=RetryAction.DEFAULT,
)


def retry_delay_bounds(task: Any, try_number: int) -> tuple[timedelta, timedelta]:
    """The shortest and longest wait before the next try, as Airflow computes it
    (exponential backoff: base * 2^(try-1), plus a deterministic jitter of up to as much
    again, capped at max_retry_delay)."""
    base = (
        task.retry_delay if isinstance(task.retry_delay, timedelta) else timedelta(seconds=task.retry_delay)
    )
    if not task.retry_exponential_backoff:
        return base, base
    low = max(1, math.ceil(base.total_seconds() * 2 ** (try_number - 1)))
    shortest, longest = timedelta(seconds=low), timedelta(seconds=2 * low - 1)
    if task.max_retry_delay:
        cap = task.max_retry_delay
        shortest, longest = min(shortest, cap), min(longest, cap)
    return shortest, longest


def on_retry_callback(context: dict[str, Any]) -> None:
    """One line per retry: what failed, which try, and when the next one runs."""
    ti = context.get("ti") or context.get("task_instance")
    task = context.get("task") or getattr(ti, "task", None)
    try_number = getattr(ti, "try_number", 1) or 1
    tries = (getattr(task, "retries", 0) or 0) + 1
    shortest, longest = retry_delay_bounds(task, try_number)
    when = _duration(shortest) if shortest == longest else f"{_duration(shortest)} to {_duration(longest)}"
    log.warning(
        "TRACKING_SYNC RETRY %s try %s of %s failed: %s -- transient, retried in %s",
        run_label(context),
        try_number,
        tries,
        first_line(context.get("exception")),
        when,
    )


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds / 60:.1f} min"
