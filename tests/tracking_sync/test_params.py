from datetime import UTC, datetime

import pytest

from tracking_sync.core.errors import InvalidParams
from tracking_sync.core.params import RunParams, validate_params
from tracking_sync.core.plan import RunPlan, RunSlice, plan_run

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
    with pytest.raises(InvalidParams, match="--from-date 2025-03-01 --to-date 2025-03-01 --reprocess"):
        plan_run({"mode": "incremental"}, None, None, run_after=END)
    assert plan_run({"mode": "full_refresh"}, None, None, run_after=END).full_refresh is True


def test_a_misspelled_conf_key_is_refused_with_the_allowed_keys():
    with pytest.raises(InvalidParams) as error:
        plan_run({"validation": "scoped"}, START, END, conf={"validaton": "full"})
    assert "unknown conf key(s) 'validaton'" in str(error.value)
    assert "mode, target_schema, validation" in str(error.value)
    assert plan_run({"validation": "full"}, START, END, conf={"validation": "full"}).scope == "full"


def test_the_plan_is_the_one_description_of_the_run_and_survives_xcom():
    import json

    plan = plan_run({"target_schema": "analytics"}, START, END, conf={})
    assert (plan.scope, plan.staging_table) == ("scoped", "action_staging_20250301t000000_20250302t000000")
    assert (plan.window_start, plan.window_end) == (START, END)
    data = json.loads(json.dumps(plan.to_xcom()))
    assert RunPlan.from_xcom(data) == plan
    assert data["target_schema"] == "analytics" and data["staging_table"] == plan.staging_table


def test_a_full_refresh_validates_in_full_and_has_its_own_staging_table():
    plan = plan_run({"mode": "full_refresh", "validation": "scoped"}, START, END)
    assert plan.scope == "full" and plan.staging_table == "action_staging_full_refresh"


def test_a_run_without_data_interval_is_validated_up_to_when_it_was_triggered():
    triggered = datetime(2026, 1, 5, 7, 30, tzinfo=UTC)
    plan = plan_run({"mode": "full_refresh"}, None, None, run_after=triggered)
    assert (plan.window_start, plan.window_end) == (triggered, triggered)
    plan = plan_run({}, START, END, run_after=triggered)
    assert (plan.window_start, plan.window_end) == (START, END)


@pytest.mark.parametrize("partitions", [0, -1, 65, 2.5, "4", True])
def test_partitions_outside_1_to_the_cap_are_refused_before_data_moves(partitions):
    with pytest.raises(InvalidParams, match="is not a whole number from 1 to 64") as error:
        plan_run({"mode": "full_refresh", "partitions": partitions}, START, END)
    assert f"partitions={partitions!r}" in str(error.value)


def test_a_full_refresh_takes_the_partitions_param_or_the_deployment_default():
    assert plan_run({"mode": "full_refresh", "partitions": 4}, START, END).partitions == 4
    assert plan_run({"mode": "full_refresh"}, START, END, default_partitions=3).partitions == 3
    assert plan_run({"mode": "full_refresh", "partitions": None}, START, END).partitions == 1
    plan = plan_run({"mode": "full_refresh", "partitions": 8}, START, END)
    assert RunPlan.from_xcom(plan.to_xcom()) == plan


def test_nightly_runs_and_backfills_are_one_slice_whatever_the_partitions():
    assert plan_run({"partitions": 4}, START, END, default_partitions=8).partitions == 1
