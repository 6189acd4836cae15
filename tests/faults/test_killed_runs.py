"""A run killed with SIGKILL in the middle of a stage leaves the target as it was, and a
rerun of the same interval makes it equal to the source, row for row.

The run is a dag.test() in a subprocess: a child forked by a warm parent process with an
AIRFLOW_HOME of its own (tests.faults.utils.DagRunParent), in a session and process group
of its own. Each test first makes the stage block on a lock the test holds, waits until the
database shows the stage waiting (pg_stat_activity), and only then sends SIGKILL to the
whole process group: the kill lands inside the stage every time, with no sleep and no race.
Afterwards no process of the group is left, the target is as it was, and the rerun (the
operator's repair: the same logical date, in this process) makes it equal to the source.
"""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime

import psycopg2
import pytest

from tests.dag_helpers import run_dag
from tests.faults.utils import activity, lock_waiters, sessions_locking, wait_until, watch
from tests.pipeline_helpers import (
    assert_same_rows,
    change_source_within,
    fetch_rows,
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
