"""The postgres_to_redshift DAG's shape: schedule, task order, timeouts, SQL path, trigger form.

test_dag_policy.py checks what every DAG file must have (owner, tags, retries, catchup,
doc_md); this module checks what this DAG promises on-call and the trigger form.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tracking_sync.core.names import DAG_ID

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = REPO_ROOT / "dags" / "postgres_to_redshift.py"
STAGES = ("export", "upload", "load")


def load_dag(dag_file: Path = DAG_FILE):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dag_file))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[DAG_ID]


@pytest.fixture(scope="module")
def dag():
    return load_dag()


def core_timetable(dag):
    """The timetable as the scheduler runs it (the SDK's is only its declaration)."""
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(dag.timetable)


# --- schedule ---------------------------------------------------------------------------


def test_a_manual_run_covers_one_whole_utc_day(dag):
    interval = core_timetable(dag).infer_manual_data_interval(
        run_after=datetime(2025, 3, 2, 12, 30, tzinfo=UTC)
    )
    assert interval.start != interval.end, "start == end: the schedule gives no real interval"
    assert (interval.start, interval.end) == (
        datetime(2025, 3, 1, tzinfo=UTC),
        datetime(2025, 3, 2, tzinfo=UTC),
    )


def test_nightly_runs_cover_consecutive_utc_days(dag):
    from airflow.timetables.base import DataInterval, TimeRestriction

    timetable = core_timetable(dag)
    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=True)
    first = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert first.data_interval == DataInterval(dag.start_date, dag.start_date + timedelta(days=1))
    assert first.run_after == first.data_interval.end, "a day runs once it is over"

    nxt = timetable.next_dagrun_info(
        last_automated_data_interval=first.data_interval, restriction=restriction
    )
    assert nxt.data_interval.start == first.data_interval.end, "no gap, no overlap"
    assert nxt.data_interval.end - nxt.data_interval.start == timedelta(days=1)
    assert nxt.data_interval.start.utcoffset() == timedelta(0)


def test_start_date_is_static_and_a_utc_midnight(dag):
    again = load_dag()  # a start_date computed from now() would differ between parses
    assert dag.start_date == again.start_date
    assert dag.start_date < datetime.now(UTC) - timedelta(days=1)
    assert dag.start_date.utcoffset() == timedelta(0)
    assert (dag.start_date.hour, dag.start_date.minute, dag.start_date.second) == (0, 0, 0)


def test_one_run_at_a_time(dag):
    # Runs share the target tables; two publishing at once would interleave deletes.
    assert dag.max_active_runs == 1


def test_a_new_deployment_starts_it_paused(dag):
    # Unpaused, the latest interval runs at once (catchup off), and an incremental run into
    # an empty target fails its validation: the first run must be a full refresh, by hand.
    assert dag.is_paused_upon_creation is True


def test_a_nightly_run_is_late_a_set_time_after_its_interval_ends(monkeypatch):
    from airflow.sdk import AsyncCallback, DeadlineReference

    monkeypatch.setenv("TRACKING_SYNC_DEADLINE_MINUTES", "45")
    (alert,) = load_dag().deadline  # read when the file is parsed
    # The logical date of a run with a real data interval is the interval's start.
    assert alert.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert alert.interval == timedelta(days=1, minutes=45)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "tracking_sync.oncall.deadlines.on_deadline_missed"
    monkeypatch.delenv("TRACKING_SYNC_DEADLINE_MINUTES")
    assert load_dag().deadline[0].interval == timedelta(days=1, hours=6), "6 h by default"


def test_airflow_dags_test_parses_it_without_the_deadline_the_dag_processor_with_it(monkeypatch):
    # `airflow dags test <dag_id>` parses under a parsing context naming the DAG (Airflow's
    # get_parsing_context, read from this variable): Airflow 3.3's dag.test() cannot finish a
    # successful run of a DAG with a deadline (tracking_sync.oncall.deadlines). The DAG processor
    # parses without one, and a context naming another DAG leaves this one as it is.
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", DAG_ID)
    assert load_dag().deadline is None
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "another_dag")
    assert len(load_dag().deadline) == 1
    monkeypatch.delenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID")
    assert len(load_dag().deadline) == 1


def test_only_validate_publishes_the_target_assets(dag):
    # Airflow emits a task's asset events only when it succeeds: validate passing is the
    # only way an analytics DAG scheduled on them is triggered.
    from tracking_sync.assets import LOADED_TABLES

    publishers = {task.task_id: list(task.outlets) for task in dag.tasks if task.outlets}
    assert publishers == {"validate": list(LOADED_TABLES)}


# --- tasks ------------------------------------------------------------------------------


def test_every_task_has_an_execution_timeout(dag):
    for task in dag.tasks:
        timeout = task.execution_timeout
        assert timeout is not None, f"{task.task_id}: set execution_timeout"
        assert timedelta(0) < timeout <= timedelta(hours=12), f"{task.task_id}: {timeout}"


def test_runs_of_a_backfill_never_reload_action_type_at_once(dag):
    # REPLACE = delete + COPY: two overlapping reloads would leave the rows twice.
    assert dag.get_task("load_action_type").max_active_tis_per_dag == 1


def test_every_task_redacts_its_own_log_before_it_runs(dag):
    # Provider-operator tasks (create_schema, the loads) log statements themselves; the
    # Task SDK's masker must be in their log chain before execute (see connections.py).
    from tracking_sync.connections import redact_task_logs_callback

    for task in dag.tasks:
        callbacks = task.on_execute_callback
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        assert redact_task_logs_callback in callbacks, f"{task.task_id} does not redact its log"


def upstream(dag, task_id: str) -> set[str]:
    """Every task that must finish before task_id (transitively)."""
    return set(dag.get_task(task_id).get_flat_relative_ids(upstream=True))


def test_the_expected_tasks_and_no_others(dag):
    assert set(dag.task_ids) == {
        "plan_run",
        "create_schema",
        "export_action",
        "export_action_type",
        "upload_action",
        "upload_action_type",
        "write_action_manifest",
        "load_action_staging",
        "load_action_type",
        "replace_action_rows",
        "advance_capture_slot",
        "validate",
    }


def test_the_slot_is_advanced_only_after_the_publish_and_before_the_verdict(dag):
    assert dag.get_task("advance_capture_slot").upstream_task_ids == {"plan_run", "replace_action_rows"}
    assert "advance_capture_slot" in dag.get_task("validate").upstream_task_ids


@pytest.mark.parametrize(
    ("table", "load_task"),
    [("action_type", "load_action_type"), ("action", "load_action_staging")],
)
def test_each_table_moves_export_upload_load(dag, table, load_task):
    assert dag.get_task(f"upload_{table}").upstream_task_ids == {f"export_{table}", "plan_run"}
    assert f"upload_{table}" in upstream(dag, load_task)
    assert "plan_run" in upstream(dag, f"export_{table}"), "params are checked before export"


def test_action_is_exported_and_uploaded_by_mapped_tasks_and_loaded_by_one_copy(dag):
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    # One task instance per partition (plan_run's return value), visible as such in the UI:
    # plan_run cuts the partitions, no task of their own.
    for task_id in ("export_action", "upload_action"):
        assert isinstance(dag.get_task(task_id), MappedOperator), f"{task_id} is not mapped"
    assert dag.get_task("export_action").upstream_task_ids == {"plan_run"}
    mapped_over = dag.get_task("export_action")._get_specified_expand_input().value["partition"]
    assert (mapped_over.operator.task_id, mapped_over.key) == ("plan_run", "return_value")
    # Every partition's parts in one manifest, which the one COPY of load_action_staging reads.
    assert dag.get_task("write_action_manifest").upstream_task_ids == {"upload_action", "plan_run"}
    assert "write_action_manifest" in dag.get_task("load_action_staging").upstream_task_ids
    assert not isinstance(dag.get_task("load_action_staging"), MappedOperator)
    assert not isinstance(dag.get_task("export_action_type"), MappedOperator), "action_type is whole"


def test_loads_wait_for_the_schema(dag):
    # create_schema also sweeps the staging tables killed runs left; each load (re)creates
    # the table it COPies into itself (tracking_sync.load.inputs).
    assert "create_schema" in dag.get_task("load_action_type").upstream_task_ids
    assert "create_schema" in dag.get_task("load_action_staging").upstream_task_ids
    assert "plan_run" in upstream(dag, "create_schema"), "no DDL with unchecked params"


def test_replace_then_validate_last(dag):
    assert "load_action_staging" in dag.get_task("replace_action_rows").upstream_task_ids
    before_validate = upstream(dag, "validate")
    assert set(dag.task_ids) - {"validate"} == before_validate, "validate runs after everything"
    assert dag.get_task("validate").downstream_task_ids == set()


def test_plan_run_is_the_only_root(dag):
    assert [t.task_id for t in dag.roots] == ["plan_run"]


# --- SQL files --------------------------------------------------------------------------


def test_the_sql_is_found_next_to_the_package_wherever_it_is_deployed(tmp_path):
    """Deployed anywhere (here a copy in tmp, laid out as `astro dev init` does), the
    pipeline renders its SQL from the include/ next to plugins/, not from this checkout."""
    import subprocess
    import sys

    deployed = tmp_path / "deployed"
    shutil.copytree(REPO_ROOT / "plugins", deployed / "plugins")
    shutil.copytree(REPO_ROOT / "include", deployed / "include")
    probe = (
        "from tracking_sync.core import sql; from tracking_sync.load import schema; "
        "print(sql.SQL_DIR); print(len(schema.target_tables_statements('tracking')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(deployed / "plugins")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert Path(out[0]).resolve() == (deployed / "include" / "sql").resolve(), (
        "derive the SQL folder from the package's own path, not a deployment's absolute path"
    )
    assert int(out[1]) == 3, "create schema + two tables"


# --- trigger form -----------------------------------------------------------------------


def test_the_trigger_form_offers_the_documented_params(dag):
    from tracking_sync.core.params import DEFAULT_TARGET_SCHEMA, MAX_PARTITIONS, MODES, VALIDATIONS

    params = dag.params
    assert set(params.keys()) == {"mode", "target_schema", "validation", "partitions"}

    partitions = params.get_param("partitions")
    assert partitions.value is None, "empty: the deployment's TRACKING_SYNC_PARTITIONS"
    assert (partitions.schema["minimum"], partitions.schema["maximum"]) == (1, MAX_PARTITIONS)

    mode = params.get_param("mode")
    assert mode.schema["enum"] == list(MODES) == ["incremental", "full_refresh", "changes"]
    assert mode.value == "incremental", "an unattended trigger is a normal nightly run"

    validation = params.get_param("validation")
    assert validation.schema["enum"] == list(VALIDATIONS) == ["scoped", "full"]

    schema = params.get_param("target_schema")
    assert schema.value == DEFAULT_TARGET_SCHEMA
    assert schema.schema["type"] == "string"
    assert schema.schema["pattern"] == r"^[a-z_][a-z0-9_]*$"

    for name in params.keys():
        description = params.get_param(name).description
        assert description and len(description) > 20, f"param {name}: describe it for the form"
    for name, options in (("mode", MODES), ("validation", VALIDATIONS)):
        for option in options:
            assert option in params.get_param(name).description, f"{name}: explain {option!r}"


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("mode", "bogus", "'incremental', 'full_refresh'"),
        ("validation", "some", "'scoped', 'full'"),
        ("target_schema", "x; drop table", "^[a-z_][a-z0-9_]*$"),
        ("target_schema", "Tracking", "^[a-z_][a-z0-9_]*$"),
        ("target_schema", "a" * 128, "too long"),
        ("partitions", 0, "less than the minimum of 1"),
        ("partitions", 65, "greater than the maximum of 64"),
        ("partitions", "four", "is not of type 'null', 'integer'"),
    ],
)
def test_the_form_rejects_bad_values_and_says_what_is_allowed(dag, name, value, allowed):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError) as raised:
        dag.params.get_param(name).resolve(value)
    assert allowed in str(raised.value)


# --- bad params through a real run ------------------------------------------------------


@pytest.fixture
def run_env(stack_env, airflow_db, tmp_path, monkeypatch):
    """A prefix and staging folder of this test's own, to see whether anything moved."""
    prefix = f"dag-structure-{uuid.uuid4().hex[:8]}"
    staging = tmp_path / "staging"
    monkeypatch.setenv("TRACKING_SYNC_PREFIX", prefix)
    monkeypatch.setenv("TRACKING_SYNC_STAGING_DIR", str(staging))
    return {"prefix": prefix, "staging": staging}


@pytest.fixture
def test_dag(run_env):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dag = bag.dags[DAG_ID]
    for task in dag.tasks:
        task.retries = 0  # a retry would wait retry_delay inside dag.test()
    return dag


def assert_nothing_moved(stack, run_env) -> None:
    listing = stack.s3.client().list_objects_v2(Bucket=stack.s3.bucket, Prefix=run_env["prefix"])
    assert listing.get("KeyCount", 0) == 0, f"objects were written: {listing.get('Contents')}"
    staged = list(run_env["staging"].rglob("*")) if run_env["staging"].exists() else []
    assert staged == [], f"parts were exported: {staged}"


def dag_runs_at(logical_date: datetime) -> list:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return (
            session.query(DagRun).filter(DagRun.dag_id == DAG_ID, DagRun.logical_date == logical_date).all()
        )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("conf", "day", "allowed"),
    [
        ({"mode": "bogus"}, 1, "is not one of ['incremental', 'full_refresh', 'changes']"),
        ({"target_schema": "x; drop table"}, 2, "does not match '^[a-z_][a-z0-9_]*$'"),
    ],
    ids=["unknown-mode", "schema-not-an-identifier"],
)
def test_params_outside_the_form_schema_are_refused_before_a_run_exists(
    test_dag, stack, run_env, conf, day, allowed
):
    from airflow.sdk.exceptions import ParamValidationError

    logical_date = datetime(2031, 1, day, tzinfo=UTC)  # distinct: dag.test() reuses runs
    with pytest.raises(ParamValidationError) as raised:
        test_dag.test(logical_date=logical_date, run_conf=conf)
    name, value = next(iter(conf.items()))
    assert f"Invalid input for param {name}: {value!r} {allowed}" in str(raised.value)
    assert dag_runs_at(logical_date) == [], "no run was created"
    assert_nothing_moved(stack, run_env)


@pytest.mark.integration
def test_params_the_form_allows_but_the_pipeline_refuses_fail_in_plan_run(test_dag, stack, run_env, capfd):
    # "public" is a plain identifier (the form takes it), but loading into a shared
    # schema is refused by plan_run before anything moves.
    capfd.readouterr()
    run = test_dag.test(logical_date=datetime(2031, 1, 3, tzinfo=UTC), run_conf={"target_schema": "public"})
    output = "".join(capfd.readouterr())
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["plan_run"] == "failed"
    for task_id, state in states.items():
        if task_id != "plan_run":
            assert state == "upstream_failed", f"{task_id} was {state}: it should not have run"
    assert "target_schema='public' is a system or shared schema" in output
    assert_nothing_moved(stack, run_env)
