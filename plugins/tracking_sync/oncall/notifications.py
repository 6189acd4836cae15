"""On-call: the failure callback of every task of the DAG.

It logs ONE line an on-call engineer can act on:

    TRACKING_SYNC FAILED dag=postgres_to_redshift task=validate interval=2025-03-01T00:00:00+00:00
    -> 2025-03-02T00:00:00+00:00 run=scheduled__... what=parity FAILED (scoped): ...
    report=XCom 'validation_report' of task validate + task log http://.../tasks/validate?try_number=1

and, when a notifier is configured, calls it with the task context (to which it adds
`failure_summary`, that line). The notifier is any Airflow notifier class (a subclass of
airflow.sdk.BaseNotifier, e.g. the Slack or SMTP provider's), named by its import path:

    TRACKING_SYNC_NOTIFIER="airflow.providers.slack.notifications.slack.SlackNotifier"
    TRACKING_SYNC_NOTIFIER_KWARGS='{"slack_conn_id": "slack_oncall", "channel": "#data-oncall",
                                   "text": "{{ failure_summary }}"}'

or the same in airflow.cfg, section [tracking_sync], keys `notifier` and `notifier_kwargs`
(AIRFLOW__TRACKING_SYNC__NOTIFIER / AIRFLOW__TRACKING_SYNC__NOTIFIER_KWARGS). The
environment variables win. Keyword arguments are JSON; notifiers render their templated
fields with the context, so "{{ failure_summary }}" becomes the line above.

A notifier that cannot be imported or fails is logged and does not hide the failure
being reported (the task is already failed; Airflow logs callback errors too).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tracking_sync.core.errors import NotifierMisconfigured
from tracking_sync.core.names import REPORT_XCOM_KEY
from tracking_sync.core.settings import setting

log = logging.getLogger(__name__)

NOTIFIER_ENV = "TRACKING_SYNC_NOTIFIER"
NOTIFIER_KWARGS_ENV = "TRACKING_SYNC_NOTIFIER_KWARGS"


def first_line(error: BaseException | str | None) -> str:
    if error is None:
        return "unknown error (no exception in the context)"
    text = str(error).strip().splitlines()
    message = text[0] if text else ""
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {message}" if message else type(error).__name__
    return message


def run_label(context: dict[str, Any]) -> str:
    """dag=... task=... interval=... run=...: which task of which run, for on-call lines."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = getattr(ti, "run_id", None) or context.get("run_id", "?")
    start = context.get("data_interval_start")
    end = context.get("data_interval_end")
    interval = f"{start.isoformat() if start else '?'} -> {end.isoformat() if end else '?'}"
    return f"dag={dag_id} task={task_id} interval={interval} run={run_id}"


def failure_summary(context: dict[str, Any]) -> str:
    """The one line on-call reads first: DAG, task, interval, what failed, where the report is."""
    ti = context.get("ti") or context.get("task_instance")
    task_id = getattr(ti, "task_id", "?")
    run_id = getattr(ti, "run_id", None) or context.get("run_id", "?")
    try:
        log_url = ti.log_url
    except Exception:  # outside a worker (no [api] base_url): the line still says where
        log_url = f"the log of task {task_id} in run {run_id}"
    where = f"task log {log_url}"
    if task_id == "validate":
        where = f"XCom '{REPORT_XCOM_KEY}' of task validate + {where}"
    return (
        f"TRACKING_SYNC FAILED {run_label(context)} "
        f"what={first_line(context.get('exception'))} report={where}"
    )


def configured_notifier() -> Any | None:
    """The notifier named in configuration, instantiated; None when none is configured."""
    path = setting(NOTIFIER_ENV)
    if not path:
        return None
    from airflow.sdk.module_loading import import_string

    try:
        notifier_class = import_string(path)
    except ImportError as error:
        raise NotifierMisconfigured(
            f"{NOTIFIER_ENV}={path!r} cannot be imported ({error}): name a notifier class as "
            "package.module.ClassName, e.g. airflow.providers.slack.notifications.slack.SlackNotifier"
        ) from error
    raw_kwargs = setting(NOTIFIER_KWARGS_ENV) or "{}"
    try:
        kwargs = json.loads(raw_kwargs)
    except json.JSONDecodeError as error:
        raise NotifierMisconfigured(f"{NOTIFIER_KWARGS_ENV} is not a JSON object: {error}") from error
    if not isinstance(kwargs, dict):
        raise NotifierMisconfigured(f"{NOTIFIER_KWARGS_ENV} must be a JSON object, got {raw_kwargs!r}")
    notifier = notifier_class(**kwargs)
    if not callable(notifier):
        raise NotifierMisconfigured(
            f"{path} is not a notifier: an instance must be callable with the context "
            "(subclass airflow.sdk.BaseNotifier)"
        )
    return notifier


def on_failure_callback(context: dict[str, Any]) -> None:
    """Task failure callback: log the one-line summary, then notify if configured."""
    summary = failure_summary(context)
    log.error(summary)
    try:
        notifier = configured_notifier()
    except NotifierMisconfigured as error:
        log.error("on-call notifier not called: %s", error)
        return
    if notifier is None:
        return
    context["failure_summary"] = summary
    notifier(context)


def notify(line: str, context: dict[str, Any] | None = None) -> None:
    """A warning for on-call that fails nothing (a slot keeping too much WAL): logged, and sent
    to the configured notifier as its `failure_summary` (the text notifiers are templated on)."""
    log.warning(line)
    try:
        notifier = configured_notifier()
    except NotifierMisconfigured as error:
        log.error("on-call notifier not called: %s", error)
        return
    if notifier is not None:
        notifier({**(context or {}), "warning_summary": line, "failure_summary": line})
