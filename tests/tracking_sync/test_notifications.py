"""The on-call failure callback: one summary line, and the configured notifier."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from tests.e2e.notifiers import RecordingNotifier
from tracking_sync.oncall.notifications import (
    NOTIFIER_ENV,
    NOTIFIER_KWARGS_ENV,
    configured_notifier,
    failure_summary,
    on_failure_callback,
)

NOTIFIER_PATH = f"{RecordingNotifier.__module__}.RecordingNotifier"


def _context(task_id="validate", exception=None):
    ti = SimpleNamespace(
        dag_id="postgres_to_redshift",
        task_id=task_id,
        run_id="scheduled__2025-03-10T00:00:00+00:00",
        log_url="http://airflow/dags/postgres_to_redshift/runs/r/tasks/" + task_id,
    )
    return {
        "ti": ti,
        "data_interval_start": datetime(2025, 3, 10, tzinfo=UTC),
        "data_interval_end": datetime(2025, 3, 11, tzinfo=UTC),
        "exception": exception,
    }


@pytest.fixture(autouse=True)
def no_notifier(monkeypatch):
    monkeypatch.delenv(NOTIFIER_ENV, raising=False)
    monkeypatch.delenv(NOTIFIER_KWARGS_ENV, raising=False)
    RecordingNotifier.sent.clear()


def test_summary_names_dag_task_interval_what_and_where():
    error = RuntimeError("parity FAILED (scoped): per_user_session_totals: 3 user_profile_id differ\nmore")
    line = failure_summary(_context(exception=error))
    assert "\n" not in line
    assert "dag=postgres_to_redshift task=validate" in line
    assert "interval=2025-03-10T00:00:00+00:00 -> 2025-03-11T00:00:00+00:00" in line
    assert "what=RuntimeError: parity FAILED (scoped): per_user_session_totals: 3" in line
    assert "report=XCom 'validation_report' of task validate + task log http://airflow/" in line
    other = failure_summary(_context(task_id="load_action", exception=TimeoutError()))
    assert "what=TimeoutError" in other and "XCom" not in other


def test_callback_logs_one_line_and_calls_the_configured_notifier(monkeypatch, caplog):
    monkeypatch.setenv(NOTIFIER_ENV, NOTIFIER_PATH)
    monkeypatch.setenv(NOTIFIER_KWARGS_ENV, '{"text": "on-call: {{ failure_summary }}"}')
    with caplog.at_level(logging.ERROR, logger="tracking_sync.oncall.notifications"):
        on_failure_callback(_context(exception=ValueError("boom")))
    assert [r.getMessage() for r in caplog.records if "TRACKING_SYNC FAILED" in r.getMessage()]
    assert len(RecordingNotifier.sent) == 1
    assert RecordingNotifier.sent[0].startswith("on-call: TRACKING_SYNC FAILED dag=postgres_to_redshift")


def test_no_notifier_configured_only_logs(caplog):
    assert configured_notifier() is None
    with caplog.at_level(logging.ERROR, logger="tracking_sync.oncall.notifications"):
        on_failure_callback(_context(exception=ValueError("boom")))
    assert RecordingNotifier.sent == []
    assert any("TRACKING_SYNC FAILED" in r.getMessage() for r in caplog.records)


def test_a_misnamed_notifier_is_reported_without_hiding_the_failure(monkeypatch, caplog):
    monkeypatch.setenv(NOTIFIER_ENV, "no_such_package.Notifier")
    with caplog.at_level(logging.ERROR, logger="tracking_sync.oncall.notifications"):
        on_failure_callback(_context(exception=ValueError("boom")))
    messages = [r.getMessage() for r in caplog.records]
    assert any("TRACKING_SYNC FAILED" in m for m in messages)
    assert any("cannot be imported" in m and "package.module.ClassName" in m for m in messages)
