from datetime import UTC, datetime

import pytest

from tracking_sync.exceptions import InvalidParams
from tracking_sync.params import RunParams, RunSlice, plan_run, plan_run_task, validate_params

START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 3, 2, tzinfo=UTC)


def test_defaults_are_an_incremental_run_into_tracking():
    assert validate_params({}) == RunParams("incremental", "tracking", "scoped")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mode": "everything"}, "mode='everything' is not one of incremental, full_refresh"),
        ({"target_schema": "Tracking"}, "is not a plain identifier: use lower-case letters"),
        ({"target_schema": "x; drop table action"}, "is not a plain identifier"),
        ({"target_schema": "1abc"}, "is not a plain identifier"),
        ({"target_schema": ""}, "is not a plain identifier"),
        ({"target_schema": "a" * 128}, "longer than 127 bytes"),
        ({"target_schema": "pg_catalog"}, "system or shared schema"),
        ({"target_schema": "public"}, "system or shared schema"),
        ({"validation": "some"}, "validation='some' is not one of scoped, full"),
    ],
)
def test_bad_params_say_what_is_allowed(params, message):
    with pytest.raises(InvalidParams, match="invalid trigger params") as error:
        validate_params(params)
    assert message in str(error.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidParams) as error:
        validate_params({"mode": "x", "validation": "y"})
    assert "mode=" in str(error.value) and "validation=" in str(error.value)


def test_slice_label_names_the_interval_in_utc():
    run_slice = RunSlice.for_run(validate_params({}), START, END)
    assert run_slice.label == "20250301t000000_20250302t000000"
    assert run_slice.naive_utc_bounds == (datetime(2025, 3, 1), datetime(2025, 3, 2))


def test_full_refresh_ignores_the_interval():
    run_slice = RunSlice.for_run(validate_params({"mode": "full_refresh"}), START, START)
    assert run_slice.full_refresh and run_slice.label == "full_refresh"


def test_an_empty_interval_is_refused_with_the_reason():
    with pytest.raises(InvalidParams, match="CronDataIntervalTimetable"):
        RunSlice.for_run(validate_params({}), START, START)


def test_an_incremental_run_without_a_data_interval_is_refused_and_says_how_to_trigger():
    # `airflow dags trigger` without --logical-date makes a run with no data interval.
    with pytest.raises(InvalidParams, match="--logical-date"):
        plan_run({"mode": "incremental"}, None, None)
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="needs a data interval"):  # no retry
        plan_run_task({"mode": "incremental"}, None, None)
    assert plan_run_task({"mode": "full_refresh"}, None, None)["full_refresh"] is True
