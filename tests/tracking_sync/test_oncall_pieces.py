"""On-call beyond task states, without Airflow running: the deadline's setting, reference,
callback and line; the assets' extras and that only a passing validate publishes them; the
one-line first line of every failure the pipeline raises on purpose.

tests/e2e/test_oncall.py shows the deadline and the assets through the real scheduler.
"""

from __future__ import annotations

import asyncio
import errno
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk import AsyncCallback, DeadlineReference

from tests.e2e.notifiers import RecordingNotifier
from tracking_sync import tasks
from tracking_sync.assets import ACTION_ASSET, ACTION_TYPE_ASSET, LOADED_TABLES, load_event_extras
from tracking_sync.core.errors import InvalidParams, LoadRejected, MissingSetting, StagingDiskFull
from tracking_sync.oncall.deadlines import (
    DEADLINE_ENV,
    allowed_lateness,
    late_summary,
    nightly_deadline,
    notify_late_run,
    on_deadline_missed,
)
from tracking_sync.oncall.notifications import NOTIFIER_ENV, NOTIFIER_KWARGS_ENV, failure_summary


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch):
    for name in (NOTIFIER_ENV, NOTIFIER_KWARGS_ENV, DEADLINE_ENV):
        monkeypatch.delenv(name, raising=False)
    RecordingNotifier.sent.clear()


# --- the deadline -----------------------------------------------------------------------


def test_lateness_defaults_to_six_hours_and_is_a_setting(monkeypatch):
    assert allowed_lateness() == timedelta(hours=6)
    monkeypatch.setenv(DEADLINE_ENV, "90")
    assert allowed_lateness() == timedelta(minutes=90)
    monkeypatch.setenv(DEADLINE_ENV, "0.05")
    assert allowed_lateness() == timedelta(seconds=3)


def test_off_parses_the_dag_without_a_deadline(monkeypatch):
    # Airflow 3.3's dag.test() (`airflow dags test`) cannot finish a DAG with one.
    monkeypatch.setenv(DEADLINE_ENV, "off")
    assert allowed_lateness() is None
    assert nightly_deadline() is None


@pytest.mark.parametrize("value", ["six hours", "0", "-5"])
def test_a_bad_lateness_names_the_setting(value):
    with pytest.raises(MissingSetting, match=f"{DEADLINE_ENV}='{value}' is not a positive number"):
        allowed_lateness(value)


def test_the_deadline_is_the_interval_end_plus_the_lateness(monkeypatch):
    # DAGRUN_LOGICAL_DATE of a CronDataIntervalTimetable run is its interval START.
    monkeypatch.setenv(DEADLINE_ENV, "30")
    alert = nightly_deadline()
    assert alert.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert alert.interval == timedelta(days=1, minutes=30)
    assert isinstance(alert.callback, AsyncCallback), "runs in the triggerer"
    assert alert.callback.path == "tracking_sync.oncall.deadlines.on_deadline_missed"


def _context(run_type="scheduled"):
    return {
        "dag_run": {
            "dag_id": "postgres_to_redshift",
            "dag_run_id": f"{run_type}__2025-03-01T00:00:00+00:00",
            "run_type": run_type,
            "state": "running",
            "data_interval_start": "2025-03-01T00:00:00Z",
            "data_interval_end": "2025-03-02T00:00:00Z",
        },
        "deadline": {"id": "d1", "deadline_time": "2025-03-02T06:00:00+00:00"},
    }


def test_the_late_line_names_the_run_its_interval_and_how_late():
    context = _context()
    line = late_summary(
        context["dag_run"], datetime(2025, 3, 2, 6, tzinfo=UTC), datetime(2025, 3, 2, 6, 12, 30, tzinfo=UTC)
    )
    assert line == (
        "TRACKING_SYNC LATE dag=postgres_to_redshift run=scheduled__2025-03-01T00:00:00+00:00 "
        "interval=2025-03-01T00:00:00+00:00 -> 2025-03-02T00:00:00+00:00 state=running: not "
        "finished 6h 12m after its interval ended (allowed 6h 0m, deadline 2025-03-02T06:00:00+00:00)"
    )


def test_a_late_nightly_run_calls_the_configured_notifier(monkeypatch):
    monkeypatch.setenv(NOTIFIER_ENV, "tests.e2e.notifiers.RecordingNotifier")
    monkeypatch.setenv(NOTIFIER_KWARGS_ENV, '{"text": "late: {{ deadline_summary }}"}')
    line = asyncio.run(on_deadline_missed(context=_context()))
    assert line.startswith("TRACKING_SYNC LATE dag=postgres_to_redshift run=scheduled__2025-03-01")
    assert RecordingNotifier.sent == [f"late: {line}"]


@pytest.mark.parametrize("run_type", ["backfill", "manual"])
def test_only_nightly_runs_are_reported_late(monkeypatch, run_type):
    # A backfill of old days is past its deadline as soon as it exists.
    monkeypatch.setenv(NOTIFIER_ENV, "tests.e2e.notifiers.RecordingNotifier")
    assert notify_late_run(_context(run_type)) is None
    assert RecordingNotifier.sent == []


# --- the assets -------------------------------------------------------------------------

PLAN = {
    "mode": "incremental",
    "target_schema": "tracking",
    "validation": "scoped",
    "scope": "scoped",
    "full_refresh": False,
    "start": "2025-03-01T00:00:00+00:00",
    "end": "2025-03-02T00:00:00+00:00",
    "window_start": "2025-03-01T00:00:00+00:00",
    "window_end": "2025-03-02T00:00:00+00:00",
    "slice_label": "20250301t000000_20250302t000000",
    "staging_table": "action_staging_20250301t000000_20250302t000000",
}
PUBLISHED = {
    "inserted": 120,
    "carried": 2,
    "moved_in": 0,
    "deleted_in_source": 0,
    "placed_outside_ids": [7, 9],
}


def test_asset_names_are_static_connection_schema_table():
    assert [asset.name for asset in LOADED_TABLES] == [
        "redshift_default.tracking.action",
        "redshift_default.tracking.action_type",
    ]


def test_event_extras_carry_the_interval_and_the_row_counts():
    extras = load_event_extras(PLAN, {"rows": 118}, {"rows": 12}, PUBLISHED, dag_id="d", run_id="r")
    assert extras[ACTION_ASSET.name] == {
        "dag_id": "d",
        "run_id": "r",
        "mode": "incremental",
        "target_schema": "tracking",
        "data_interval_start": "2025-03-01T00:00:00+00:00",
        "data_interval_end": "2025-03-02T00:00:00+00:00",
        "validated_up_to": "2025-03-02T00:00:00+00:00",
        "validation": "scoped",
        "action_load": "interval",
        "table": "action",
        "rows_staged": 118,
        "rows_inserted": 120,
        "rows_carried": 2,
    }
    assert extras[ACTION_TYPE_ASSET.name]["rows_staged"] == 12


class OutletEvents(dict):
    def __missing__(self, asset):
        self[asset] = SimpleNamespace(extra={})
        return self[asset]


def _report(passed: bool):
    return SimpleNamespace(
        passed=passed,
        summary=lambda: (
            "parity PASSED (scoped)"
            if passed
            else "parity FAILED (scoped): per_user_session_totals: 3 user_profile_id differ; days: 2025-03-01"
        ),
        format_table=lambda: "Validation\n(table)",
        to_dict=lambda: {},
    )


def _run_validate(monkeypatch, passed: bool):
    """The validate task with the parity checks' verdict given (no databases)."""
    import tracking_sync.connections
    import tracking_sync.validate.run

    monkeypatch.setattr(tracking_sync.validate.run, "validate_for_run", lambda *a, **k: _report(passed))
    for name in ("source_streaming_connection", "redshift_connection"):
        monkeypatch.setattr(tracking_sync.connections, name, lambda: SimpleNamespace(close=lambda: None))
    events = OutletEvents()
    ti = SimpleNamespace(
        dag_id="postgres_to_redshift", task_id="validate", run_id="scheduled__x", xcom_push=lambda **kw: None
    )
    tasks.validate.function(PLAN, PUBLISHED, {"rows": 118}, {"rows": 12}, ti=ti, outlet_events=events)
    return events


def test_a_passing_validate_sets_each_assets_extra(monkeypatch):
    events = _run_validate(monkeypatch, passed=True)
    assert events[ACTION_ASSET].extra["rows_inserted"] == 120
    assert events[ACTION_TYPE_ASSET].extra["table"] == "action_type"


def test_a_failing_validate_sets_no_extra_and_raises(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException):
        _run_validate(monkeypatch, passed=False)


# --- every failure's first line is the on-call summary ------------------------------------


def _what(error: BaseException) -> str:
    ti = SimpleNamespace(dag_id="postgres_to_redshift", task_id="t", run_id="r", log_url="http://x")
    line = failure_summary({"ti": ti, "exception": error})
    assert "\n" not in line
    return line.split(" what=", 1)[1].rsplit(" report=", 1)[0]


def _assert_first_line_is_the_summary(error: BaseException, *needles: str) -> str:
    first = str(error).splitlines()[0]
    assert _what(error) == f"{type(error).__name__}: {first}", "the notifier's what= is the first line"
    for needle in needles:
        assert needle in first, f"{needle!r} not on the first line: {first!r}"
    return first


def test_a_rejected_copy_says_what_where_and_the_fix_on_its_first_line():
    from tracking_sync.operators import load_rejected_message

    report = (
        "action row id 900, column query (limit 65535 bytes): String length exceeds DDL length "
        "[code 1204]; value 'xxx'...; file s3://b/p/action/i/part-0000.csv.zst line 16\n"
        "action row id 901, column query (limit 65535 bytes): ..."
    )
    error = LoadRejected(
        load_rejected_message("tracking", "action_staging_x", "b", "p/manifest.json", report)
    )
    _assert_first_line_is_the_summary(
        error,
        "COPY into tracking.action_staging_x failed: action row id 900, column query",
        "(and 1 more, below)",
        "the target is unchanged",
        "clear the export task",
        "files s3://b/p/manifest.json",
    )
    assert "action row id 901" in str(error).splitlines()[1]


def test_a_validate_failure_says_what_and_where_the_report_is_on_its_first_line(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException) as raised:
        _run_validate(monkeypatch, passed=False)
    _assert_first_line_is_the_summary(
        raised.value, "parity FAILED (scoped): per_user_session_totals: 3", "XCom 'validation_report'"
    )


def test_invalid_params_list_what_is_allowed_on_the_first_line():
    from tracking_sync.core.params import validate_params

    with pytest.raises(InvalidParams) as raised:
        validate_params(
            {"mode": "incremental", "target_schema": "tracking", "validation": "scoped"},
            {"validaton": "full"},
        )
    _assert_first_line_is_the_summary(raised.value, "unknown conf key(s) 'validaton'", "the allowed keys are")


def test_a_full_staging_disk_names_the_folder_and_the_fix_on_the_first_line(tmp_path: Path):
    from tracking_sync.core.plan import RunSlice
    from tracking_sync.core.tables import ACTION_TYPE
    from tracking_sync.extract.export import export_table

    class Cursor:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def execute(self, statement):
            pass

        def copy_expert(self, statement, sink):
            raise OSError(errno.ENOSPC, "No space left on device")

    connection = SimpleNamespace(cursor=Cursor, rollback=lambda: None)
    with pytest.raises(StagingDiskFull) as raised:
        export_table(connection, ACTION_TYPE, RunSlice(full_refresh=True), tmp_path / "parts", 1024 * 1024)
    _assert_first_line_is_the_summary(
        raised.value, f"the staging folder {tmp_path / 'parts'} ran out of space", "TRACKING_SYNC_STAGING_DIR"
    )
