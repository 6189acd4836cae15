"""A live source keeps changing after a run's batch: validation tells pending changes from
real differences. The real DAG on the local stack, logical capture.

A change committed on the source after the target's applied LSN is still in the slot: the
run's validation sees it in the source and not in the target, reports it as pending and
passes; the next run applies it and checks its ids and users. A target row changed behind
the pipeline's back fails, even while other changes are pending. Interval capture (no slot)
validates as before. The source is changed between a run's plan and its validation by a
hook around validate_for_run (what the validate task calls).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg2
import pytest

from tests.dag_helpers import run_dag
from tests.pipeline_helpers import assert_same_rows, fetch_rows, insert_actions, source_rows, target_rows
from tracking_sync.core.names import REPORT_XCOM_KEY

pytestmark = pytest.mark.integration


def day(n: int) -> datetime:
    return datetime(2025, 3, n, tzinfo=UTC)


@pytest.fixture
def generated(stack):
    from devstack.demo_data import generate

    generate(stack.source_dsn, rows=1_500, seed=11, users=30, period_start="2025-03-01", period_days=6)


@pytest.fixture
def target_backend(stack):
    """The stand-in's own database: to change the target behind the pipeline's back."""
    connection = psycopg2.connect(stack.redshift.backend_dsn())
    connection.autocommit = True
    yield connection
    connection.close()


@contextmanager
def before_validation(monkeypatch, change):
    """Run `change()` when the validate task starts, after the run's batch was applied."""
    import tracking_sync.validate.run

    validate_for_run = tracking_sync.validate.run.validate_for_run

    def changed_first(*args, **kwargs):
        change()
        return validate_for_run(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(tracking_sync.validate.run, "validate_for_run", changed_first)
        yield


def validation_report(run) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=run.run_id, key=REPORT_XCOM_KEY, task_ids="validate", dag_ids=run.dag_id
            )
        ).one()
        value = XComModel.deserialize_value(row)
    return value if isinstance(value, dict) else json.loads(value)


def execute(connection, sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        assert cursor.rowcount >= 1, sql
    connection.commit()


def a_user_with_rows_on_three_days(source) -> tuple[int, list[tuple[int, datetime]]]:
    """A user, and one row (id, action_time) of each of three of their days, earliest first."""
    (user,) = fetch_rows(
        source,
        "select user_profile_id from action group by 1 "
        "having count(distinct cast(action_time as date)) >= 3 order by 1 limit 1",
    )[0]
    rows = fetch_rows(
        source,
        "select distinct on (cast(action_time as date)) id, action_time from action "
        "where user_profile_id = %s order by cast(action_time as date), id limit 3",
        (user,),
    )
    return user, rows


def test_changes_after_the_batch_pass_as_pending_and_the_next_run_applies_them(
    pipeline_dag, generated, source, target, target_schema_of_test, monkeypatch
):
    schema = target_schema_of_test
    run_dag(pipeline_dag, logical_date=day(7), conf={"target_schema": schema})
    user, ((first_id, first_time), (deleted_id, deleted_time), (updated_id, updated_time)) = (
        a_user_with_rows_on_three_days(source)
    )
    max_id = fetch_rows(source, "select max(id) from action")[0][0]
    # The batch: the user's row edited, a new row of theirs.
    execute(source, "update action set query = 'in the batch' where id = %s", (updated_id,))
    insert_actions(source, [(max_id + 1, user, "batch", 2, first_time, None, None, None, False, "b")])

    new_day = datetime(2025, 3, 6, 10, 0)

    def after_the_batch():
        # Committed after the run planned its batch: the batch's row edited again, a row of
        # the user deleted on a day of its own (a delete carries only its id: its user and
        # day come from the target), two new rows on another day.
        execute(
            source, "update action set query = 'after the batch', course_id = 99 where id = %s", (updated_id,)
        )
        execute(source, "delete from action where id = %s", (deleted_id,))
        insert_actions(
            source,
            [
                (max_id + 2, user, "after", 2, new_day, None, None, None, False, "a"),
                (max_id + 3, user, "after", 3, new_day.replace(minute=5), None, None, None, False, None),
            ],
        )

    with before_validation(monkeypatch, after_the_batch):
        run = run_dag(pipeline_dag, logical_date=day(8), conf={"target_schema": schema, "mode": "changes"})
    report = validation_report(run)
    pending = report["pending"]
    assert report["passed"] and pending["explained"], pending
    assert pending["unexplained"] == []
    assert "rows_changed_by_the_batch" in pending["pending_checks"], "the batch's id changed again"
    assert "action_rows_per_day" in pending["pending_checks"]
    # The rows that differ: the edited row, the deleted one, the two new ones (missing).
    assert set(pending["sample_ids"]) == {updated_id, deleted_id, max_id + 2, max_id + 3}
    assert deleted_time.date().isoformat() in pending["sample_days"], "its day, read from the target"
    assert new_day.date().isoformat() in pending["sample_days"]
    assert pending["changes"]["deletes"] == 1 and pending["changes"]["inserts"] == 2
    assert report["repair"] == [] and report["days_to_backfill"] == []
    # Not applied yet: the target still has the deleted row.
    assert fetch_rows(target, f"select count(*) from {schema}.action where id = %s", (deleted_id,)) == [(1,)]

    run = run_dag(pipeline_dag, logical_date=day(9), conf={"target_schema": schema, "mode": "changes"})
    report = validation_report(run)
    assert report["passed"] and report["pending"] is None, "the next run applied and checked them"
    assert_same_rows(source_rows(source), target_rows(target, schema), "action")


def test_a_target_row_changed_behind_the_pipeline_fails_while_other_changes_are_pending(
    pipeline_dag, generated, stack, source, target, target_backend, target_schema_of_test, monkeypatch
):
    schema = target_schema_of_test
    run_dag(pipeline_dag, logical_date=day(7), conf={"target_schema": schema})
    user, ((edited_id, _), (tampered_id, tampered_time), _) = a_user_with_rows_on_three_days(source)
    execute(source, "update action set query = 'in the batch' where id = %s", (edited_id,))
    max_id = fetch_rows(source, "select max(id) from action")[0][0]
    (other_user,) = fetch_rows(
        source, "select min(user_profile_id) from action where user_profile_id <> %s", (user,)
    )[0]

    def tamper_and_change():
        # The target changed behind the pipeline's back, with no change pending for that row...
        with target_backend.cursor() as cursor:
            cursor.execute(f"update {schema}.action set query = 'tampered' where id = %s", (tampered_id,))
            assert cursor.rowcount == 1
        # ...while changes to its user and its day, and to another user, are pending.
        insert_actions(
            source,
            [
                (
                    max_id + 1,
                    user,
                    "pending",
                    2,
                    tampered_time.replace(microsecond=0),
                    None,
                    None,
                    None,
                    False,
                    "p",
                ),
                (max_id + 2, other_user, "pending", 2, datetime(2025, 3, 4, 9), None, None, None, False, "q"),
            ],
        )

    with before_validation(monkeypatch, tamper_and_change):
        run = run_dag(
            pipeline_dag,
            logical_date=day(8),
            conf={"target_schema": schema, "mode": "changes"},
            expect="failed",
        )
    assert {ti.task_id for ti in run.get_task_instances() if ti.state == "failed"} == {"validate"}
    report = validation_report(run)
    pending = report["pending"]
    assert not report["passed"] and not pending["explained"]
    assert [line for line in pending["unexplained"] if f"id {tampered_id} with no pending change" in line], (
        pending
    )
    assert pending["rows"] >= 1 and max_id + 1 in pending["sample_ids"], "the pending insert is explained"
    assert any("NOT explained" in hint for hint in report["diagnosis"])
    assert report["repair"], "the repair is printed as before"


def test_interval_capture_validates_the_live_source_as_before(
    pipeline_dag, generated, source, target_schema_of_test, monkeypatch
):
    monkeypatch.setenv("TRACKING_SYNC_CAPTURE", "interval")
    schema = target_schema_of_test
    max_id = fetch_rows(source, "select max(id) from action")[0][0]

    def after_the_load():
        insert_actions(
            source, [(max_id + 1, 1, "late", 2, datetime(2025, 3, 2, 9), None, None, None, False, "x")]
        )

    with before_validation(monkeypatch, after_the_load):
        run = run_dag(pipeline_dag, logical_date=day(7), conf={"target_schema": schema}, expect="failed")
    report = validation_report(run)
    assert not report["passed"] and report["pending"] is None
    assert report["days_to_backfill"] == ["2025-03-02"]
