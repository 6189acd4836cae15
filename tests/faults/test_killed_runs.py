"""A run killed with SIGKILL in the middle of a stage leaves the target as it was, and a
rerun of the same interval makes it equal to the source, row for row.

The run is a dag.test() in a subprocess: a child forked by a warm parent process with an
AIRFLOW_HOME of its own (tests.faults.utils.DagRunParent), in a session and process group
of its own. Each test first makes the stage block on a lock the test holds, waits until the
database shows the stage waiting (pg_stat_activity), and only then sends SIGKILL to the
whole process group: the kill lands inside the stage every time, with no sleep and no race.
Afterwards no process of the group is left, the target is as it was, and the rerun (the
operator's repair: the same logical date, in this process) makes it equal to the source.

With change capture, a run killed after its publish committed and before the slot advance
leaves the target applied and the slot behind: its reruns (the same run id) and the next
nightly run apply each change exactly once and bring the slot to the applied LSN.
"""

from __future__ import annotations

import threading
from contextlib import closing
from datetime import UTC, datetime

import psycopg2
import pytest

from tests.dag_helpers import run_dag
from tests.faults.utils import WAIT_SECONDS, activity, lock_waiters, sessions_locking, wait_until, watch
from tests.pipeline_helpers import (
    assert_same_rows,
    change_source_within,
    fetch_rows,
    insert_actions,
    source_rows,
    target_rows,
)

pytestmark = pytest.mark.integration

# pg_advisory_lock key the COPY gate waits on (test-only, in the stand-in's backend)
COPY_GATE_KEY = 0x4641_554C_5453  # "FAULTS"


def day(n: int) -> datetime:
    return datetime(2025, 3, n, tzinfo=UTC)


def staging_table(n: int) -> str:
    """The staging table of the nightly run for day n (as the run plan names it)."""
    from tracking_sync.core.plan import RunSlice

    return "tracking.action_staging_" + RunSlice(False, day(n), day(n + 1)).label


def killed_and_reaped(run) -> None:
    run.assert_running()  # still inside the stage: the kill lands there
    run.kill()
    assert run.group_members() == [], "a process of the killed run's group is still alive"
    assert "DAG RUN STATE" not in run.log()


def rerun_repairs(pipeline_dag, source, target, n: int) -> None:
    """The operator's repair: run the interval again. It succeeds and target == source."""
    run_dag(pipeline_dag, logical_date=day(n + 1))
    assert_same_rows(source_rows(source), target_rows(target), f"after rerunning 03-0{n}")


def test_kill_during_the_export_then_a_rerun(dag_run_process, synced, stack, source, target):
    change_source_within(source, day(3))
    before = target_rows(target)
    with closing(psycopg2.connect(stack.source_dsn)) as locker, closing(watch(stack.source_dsn)) as seen:
        with locker.cursor() as cursor:  # held until rollback: the export's COPY waits
            cursor.execute("lock table action in access exclusive mode")
        try:
            run = dag_run_process(day(4))
            wait_until(
                lambda: run.assert_running() and lock_waiters(seen, "copy (%"),
                "the export's COPY (SELECT ...) to wait on the source's lock",
                on_timeout=lambda: activity(seen) + run.log_tail(),
            )
            killed_and_reaped(run)
        finally:
            locker.rollback()
    assert "task_id=export_action " in run.log()
    assert target_rows(target) == before, "a run killed in its export changed the target"
    rerun_repairs(synced, source, target, 3)


GATE_SQL = f"""
create or replace function faults_copy_gate() returns trigger language plpgsql as $$
begin
    perform pg_advisory_xact_lock({COPY_GATE_KEY});
    return null;
end $$;
create or replace function faults_gate_new_staging() returns event_trigger language plpgsql as $$
declare created record;
begin
    for created in select object_identity from pg_event_trigger_ddl_commands()
                   where command_tag = 'CREATE TABLE' and object_identity like '%.action_staging_%'
    loop
        execute format('create trigger faults_copy_gate before insert on %s '
                       'for each statement execute function faults_copy_gate()',
                       created.object_identity);
    end loop;
end $$;
create event trigger faults_gate_new_staging on ddl_command_end when tag in ('CREATE TABLE')
    execute function faults_gate_new_staging();
"""
UNGATE_SQL = """
drop event trigger if exists faults_gate_new_staging;
drop function if exists faults_gate_new_staging();
"""


def test_kill_during_the_copy_then_a_rerun(dag_run_process, synced, backend_dsn, source, target):
    """The staging table is created by the run itself, so the test cannot lock it beforehand:
    an event trigger in the stand-in's backend gives each new staging table a BEFORE INSERT
    trigger that waits on an advisory lock the test holds. The COPY (after the REPLACE's
    DELETE, in the same transaction) waits there."""
    change_source_within(source, day(4))
    before = target_rows(target)
    with closing(watch(backend_dsn)) as gate:
        with gate.cursor() as cursor:
            cursor.execute("select pg_advisory_lock(%s)", (COPY_GATE_KEY,))
            cursor.execute(GATE_SQL)
        try:
            run = dag_run_process(day(5))
            (pid, query), *_ = wait_until(
                lambda: run.assert_running() and lock_waiters(gate, "%copy%"),
                "the COPY into the staging table to wait at the gate",
                on_timeout=lambda: activity(gate) + run.log_tail(),
            )
            killed_and_reaped(run)
        finally:
            with gate.cursor() as cursor:
                cursor.execute(UNGATE_SQL)
                cursor.execute("select pg_advisory_unlock_all()")
        assert staging_table(4).split(".")[1] in query.lower()
        assert "task_id=load_action_staging " in run.log()
        wait_until(lambda: not sessions_locking(gate, staging_table(4)), "the killed COPY to roll back")
    assert target_rows(target) == before, "a run killed in its COPY changed the target"
    rerun_repairs(synced, source, target, 4)


def test_kill_during_the_publish_then_a_rerun(dag_run_process, synced, backend_dsn, source, target):
    """The publish waits, its DELETE and INSERT done and uncommitted, on the DROP of the staging
    table (the test reads staging); killed there, its transaction rolls back whole."""
    change_source_within(source, day(5))
    before = target_rows(target)
    staging = staging_table(5)
    with (
        closing(psycopg2.connect(backend_dsn)) as target_lock,
        closing(psycopg2.connect(backend_dsn)) as reader,
        closing(watch(backend_dsn)) as seen,
    ):
        with target_lock.cursor() as cursor:  # first gate: the publish's LOCK of the target waits
            cursor.execute("lock table tracking.action in access exclusive mode")
        try:
            run = dag_run_process(day(6))
            wait_until(
                lambda: run.assert_running() and lock_waiters(seen, "lock%action%"),
                "the publish to wait on its LOCK of the target",
                on_timeout=lambda: activity(seen) + run.log_tail(),
            )
            with reader.cursor() as cursor:  # second gate, held from now on: DROP staging waits
                cursor.execute(f"lock table {staging} in access share mode")
            target_lock.rollback()
            (pid, query), *_ = wait_until(
                lambda: run.assert_running() and lock_waiters(seen, "drop table%"),
                "the publish to reach the DROP of the staging table",
                on_timeout=lambda: activity(seen) + run.log_tail(),
            )
            (wrote,) = fetch_rows(
                seen, "select backend_xid is not null from pg_stat_activity where pid = %s", (pid,)
            )[0]
            assert wrote, "the waiting publish has deleted and inserted in its open transaction"
            killed_and_reaped(run)
        finally:
            target_lock.rollback()
            reader.rollback()
        assert "task_id=replace_action_rows " in run.log()
        wait_until(lambda: not sessions_locking(seen, "tracking.action"), "the killed publish to roll back")
        (kept,) = fetch_rows(seen, "select to_regclass(%s) is not null", (staging,))[0]
        assert kept, "the DROP of the staging table rolled back with the rest"
    assert target_rows(target) == before, "a run killed in its publish left part of it applied"
    rerun_repairs(synced, source, target, 5)


# --- change capture: SIGKILL between the publish's commit and the slot advance ----------------


def _replace_in_place(source, row_id: int) -> tuple:
    """An update, a delete and a re-insert of the same id (other user, day and query), each in
    a transaction of its own: the batch's last image of the id is the re-inserted row."""
    execute = source.cursor().execute
    execute("update action set query = 'edited before its delete' where id = %s", (row_id,))
    source.commit()
    execute("delete from action where id = %s", (row_id,))
    source.commit()
    again = (row_id, 999_001, "re-inserted", 4, datetime(2025, 3, 2, 6, 30), None, None, None, True, "again")
    insert_actions(source, [again])
    return again


def _published(run) -> dict:
    """What replace_action_rows of a dag.test() run returned (its XCom)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=run.run_id, key="return_value", task_ids="replace_action_rows", dag_ids=run.dag_id
            )
        ).one()
        return XComModel.deserialize_value(row)


def test_kill_between_the_publish_commit_and_the_slot_advance_then_reruns(
    dag_run_process, synced, backend_dsn, source, target, target_schema_of_test
):
    """A capture run's publish commits its batch and the applied LSN; the worker is killed
    (SIGKILL to the run's process group) before advance_capture_slot moves the slot. The
    rerun of the run, the next nightly run and a late rerun of the first apply each change
    exactly once, and the slot ends where the target says it applied.

    The kill lands in that gap every time, through three gates in the stand-in's backend:
    the test holds the target's action (the publish waits on its LOCK), then the run's table
    of changes (the publish, its batch and sync state written, waits on its DROP), then
    queues an ACCESS EXCLUSIVE lock on the sync state behind the publish; released, the
    publish commits, the queued lock is granted, and advance_capture_slot's first read
    (the target's applied LSN) waits behind it. The run is killed there."""
    from tests.e2e.test_capture import slot_confirmed, sync_state

    schema, pipeline_dag = target_schema_of_test, synced
    slot = f"tracking_sync_{schema}"
    changes = {"target_schema": schema, "mode": "changes"}
    planned = datetime.now(UTC)  # the killed run's run_after, so its reruns keep its run id
    run_dag(pipeline_dag, logical_date=day(7), conf={"target_schema": schema})  # bootstraps the schema
    _, _, bootstrapped_lsn, _ = sync_state(target, schema)
    slot_before = slot_confirmed(source, slot)
    (max_id,) = fetch_rows(source, "select max(id) from action")[0]
    (replaced_id,) = fetch_rows(
        source, "select min(id) from action where action_time >= %s", (day(4).replace(tzinfo=None),)
    )[0]
    change_source_within(source, day(3))  # a delete, an update, an insert
    replaced = _replace_in_place(source, replaced_id)

    with (
        closing(psycopg2.connect(backend_dsn)) as action_gate,
        closing(psycopg2.connect(backend_dsn)) as changes_gate,
        closing(psycopg2.connect(backend_dsn)) as state_gate,
        closing(watch(backend_dsn)) as seen,
    ):
        with action_gate.cursor() as cursor:  # the publish's LOCK of the target waits
            cursor.execute(f"lock table {schema}.action in access exclusive mode")
        queued = None
        try:
            run = dag_run_process(day(8), changes, run_after=planned)
            wait_until(
                lambda: run.assert_running() and lock_waiters(seen, f"lock %{schema}.action %"),
                "the publish to wait on its LOCK of the target",
                on_timeout=lambda: activity(seen) + run.log_tail(),
            )
            ((changes_table,),) = fetch_rows(
                seen,
                "select tablename from pg_tables where schemaname = %s and tablename like 'action_changes_%%'",
                (schema,),
            )
            with changes_gate.cursor() as cursor:  # the publish's DROP of its table of changes waits
                cursor.execute(f"lock table {schema}.{changes_table} in access share mode")
            action_gate.rollback()
            wait_until(
                lambda: run.assert_running() and lock_waiters(seen, f"drop table {schema}.action_changes_%"),
                "the publish, its batch applied, to wait on the DROP of its table of changes",
                on_timeout=lambda: activity(seen) + run.log_tail(),
            )
            # Queued behind the publish's open transaction (it wrote the sync state): granted
            # at its commit, before advance_capture_slot can read the applied LSN.
            queued = threading.Thread(
                target=state_gate.cursor().execute,
                args=(f"lock table {schema}.sync_state in access exclusive mode",),
                daemon=True,
            )
            queued.start()
            wait_until(
                lambda: lock_waiters(seen, f"lock table {schema}.sync_state %"),
                "the test's lock of the sync state to queue behind the publish",
                on_timeout=lambda: activity(seen),
            )
            changes_gate.rollback()  # the publish drops its table and commits
            queued.join(timeout=WAIT_SECONDS)
            assert not queued.is_alive(), "the publish did not commit" + activity(seen) + run.log_tail()
            wait_until(
                lambda: run.assert_running() and lock_waiters(seen, f"%from {schema}.sync_state%"),
                "advance_capture_slot to wait on its read of the applied LSN",
                on_timeout=lambda: activity(seen) + run.log_tail(),
            )
            (applied_lsn,) = fetch_rows(
                state_gate, f"select applied_lsn from {schema}.sync_state where target_table = 'action'"
            )[0]
            killed_and_reaped(run)
        finally:
            action_gate.rollback()
            changes_gate.rollback()
            if queued is not None:
                queued.join(timeout=WAIT_SECONDS)
            state_gate.rollback()
    assert "task_id=advance_capture_slot " in run.log(), "killed in advance_capture_slot" + run.log_tail()
    assert applied_lsn > bootstrapped_lsn, "the publish committed the batch's LSN before the kill"
    assert slot_confirmed(source, slot) == slot_before < applied_lsn, "and the slot was never advanced"
    applied_rows = target_rows(target, schema)
    assert_same_rows(source_rows(source), applied_rows, "after the killed run")
    assert replaced in applied_rows

    # The rerun of the killed run (a retry, or a clear): the same batch, found applied.
    rerun = run_dag(pipeline_dag, logical_date=day(8), conf=changes, run_after=planned)
    published = _published(rerun)
    assert published["already_applied"] and published["upto_lsn"] == applied_lsn, published
    assert target_rows(target, schema) == applied_rows, "the rerun applied nothing twice"
    assert sync_state(target, schema)[2] == applied_lsn == slot_confirmed(source, slot), "slot advanced"

    # The next nightly: the re-inserted id deleted, one row updated, one inserted; its batch
    # holds these three changes only (nothing of the first batch read again).
    execute = source.cursor().execute
    execute("delete from action where id = %s", (replaced_id,))
    execute("update action set query = 'next night' where id = %s", (max_id,))
    source.commit()
    insert_actions(
        source, [(max_id + 100, 7, "next", 2, datetime(2025, 3, 3, 9), None, None, None, False, "n")]
    )
    nightly = run_dag(pipeline_dag, logical_date=day(9), conf=changes)
    published = _published(nightly)
    assert published["changes"] == {"inserts": 1, "updates": 1, "deletes": 1, "superseded": 0}, published
    assert_same_rows(source_rows(source), target_rows(target, schema), "after the next nightly run")
    _, _, last_applied, _ = sync_state(target, schema)
    assert slot_confirmed(source, slot) == last_applied > applied_lsn

    # The killed run once more, now after a newer batch: its re-inserted row stays deleted.
    late = run_dag(pipeline_dag, logical_date=day(8), conf=changes, run_after=planned)
    assert _published(late)["already_applied"]
    assert_same_rows(source_rows(source), target_rows(target, schema), "after a late rerun")
    assert not fetch_rows(target, f"select 1 from {schema}.action where id = %s", (replaced_id,))
    assert sync_state(target, schema)[2] == last_applied == slot_confirmed(source, slot)
