"""Every change reaches Redshift: the real DAG on the local stack, capture from the source's WAL.

A new target bootstraps itself (its first run, whatever it is, loads action whole with the
slot created first); then capture runs apply what changed on days already loaded: late
rows of new and known users, a user erased, edits, moves between days, an update that leaves
a 40 KB TOASTed query unchanged. The target ends equal to the source row for row, and each
run's validation compares the users and rows the batch touched.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from tests.dag_helpers import run_dag
from tests.pipeline_helpers import assert_same_rows, fetch_rows, insert_actions, source_rows, target_rows
from tracking_sync.capture.decoding import DECODER_VARIABLE

pytestmark = pytest.mark.integration

LONG_QUERY = "select " + ", ".join(f"'column number {i} of a long learner query'" for i in range(1000))


def day(n: int) -> datetime:
    return datetime(2025, 3, n, tzinfo=UTC)


def sync_state(target, schema: str) -> tuple:
    return fetch_rows(
        target, f"select capture, slot_name, applied_lsn, bootstrapped_by from {schema}.sync_state"
    )[0]


def slot_confirmed(source, slot: str) -> int | None:
    rows = fetch_rows(
        source,
        "select confirmed_flush_lsn - '0/0'::pg_lsn from pg_replication_slots where slot_name = %s",
        (slot,),
    )
    return int(rows[0][0]) if rows and rows[0][0] is not None else None


def assert_target_is_source(source, target, schema: str) -> None:
    assert_same_rows(source_rows(source), target_rows(target, schema), "action")


@pytest.fixture
def generated(stack):
    from devstack.demo_data import generate

    generate(stack.source_dsn, rows=1_500, seed=11, users=30, period_start="2025-03-01", period_days=6)


def _late_changes(source) -> dict:
    """What a live tracking database does to days already loaded."""
    with source.cursor() as cursor:
        cursor.execute("select max(id), max(user_profile_id) from action")
        max_id, max_user = cursor.fetchone()
        cursor.execute(
            "select user_profile_id, session_id from action where action_time < %s limit 1", (day(3),)
        )
        known_user, known_session = cursor.fetchone()
        cursor.execute("select user_profile_id from action group by 1 order by count(*) desc limit 1")
        (erased,) = cursor.fetchone()
        cursor.execute("delete from action where user_profile_id = %s", (erased,))  # a privacy request
        cursor.execute(
            "update action set query = 'edited, \"late\"' where id = "
            "(select min(id) from action where action_time >= %s and action_time < %s)",
            (day(4).replace(tzinfo=None), day(5).replace(tzinfo=None)),
        )
        cursor.execute(
            "update action set action_time = action_time - interval '3 days' where id = "
            "(select max(id) from action where action_time >= %s and action_time < %s)",
            (day(5).replace(tzinfo=None), day(6).replace(tzinfo=None)),
        )
    source.commit()
    noon = datetime(2025, 3, 2, 12, 0)
    insert_actions(
        source,
        [
            (max_id + 1, max_user + 1, "late-session", 2, noon, None, None, None, False, "select 1"),
            (max_id + 2, known_user, known_session, 3, noon, 3, None, True, True, ""),
            (
                max_id + 3,
                known_user,
                known_session,
                3,
                noon + timedelta(minutes=5),
                None,
                None,
                None,
                False,
                None,
            ),
            (
                max_id + 4,
                known_user,
                known_session,
                8,
                noon + timedelta(minutes=9),
                1,
                2,
                False,
                True,
                LONG_QUERY,
            ),
        ],
    )
    with source.cursor() as cursor:
        # An update that does not touch the TOASTed query: pgoutput sends it as unchanged.
        cursor.execute("update action set course_id = 7 where id = %s", (max_id + 4,))
    source.commit()
    return {"erased": erased, "long_id": max_id + 4, "new_user": max_user + 1}


@pytest.mark.parametrize("decoder", ["compiled", "python"])
def test_a_new_target_bootstraps_and_every_later_change_reaches_it(
    pipeline_dag, generated, source, target, target_schema_of_test, decoder, monkeypatch
):
    """With each decoder of tracking_sync.capture.decoding (dag.test() runs the tasks in this
    process, so the variable reaches the capture)."""
    monkeypatch.setenv(DECODER_VARIABLE, decoder)
    schema = target_schema_of_test
    slot = f"tracking_sync_{schema}"
    # The first run of a new target, a plain nightly-style run: it loads action whole.
    run_dag(pipeline_dag, logical_date=day(7), conf={"target_schema": schema})
    assert_target_is_source(source, target, schema)
    capture, slot_name, applied, bootstrapped_by = sync_state(target, schema)
    assert (capture.strip(), slot_name.strip()) == ("logical", slot)
    assert applied is not None and bootstrapped_by

    changed = _late_changes(source)
    run_dag(pipeline_dag, logical_date=day(8), conf={"target_schema": schema, "mode": "changes"})
    assert_target_is_source(source, target, schema)
    (long_query,) = fetch_rows(
        target, f"select query from {schema}.action where id = %s", (changed["long_id"],)
    )[0]
    assert long_query == LONG_QUERY, "an update that left the TOASTed query unchanged keeps it"
    assert not fetch_rows(
        target, f"select 1 from {schema}.action where user_profile_id = %s", (changed["erased"],)
    ), "the erased user's rows are gone from the target"
    _, _, applied_after, _ = sync_state(target, schema)
    assert applied_after > applied
    assert slot_confirmed(source, slot) == applied_after, "the slot is advanced to what the target applied"

    # Nothing changed since: the next capture applies nothing and passes.
    run_dag(pipeline_dag, logical_date=day(9), conf={"target_schema": schema, "mode": "changes"})
    assert_target_is_source(source, target, schema)


def test_a_bootstrap_under_concurrent_writes_loses_nothing_and_doubles_nothing(
    pipeline_dag, generated, stack, source, target, target_schema_of_test
):
    """Writes to the source while the bootstrap's export runs: the changes before its snapshot
    are in the export, those after it in the next batch; none is lost or applied twice."""
    schema = target_schema_of_test
    stop = threading.Event()
    written = []

    def write_while_loading():
        connection = psycopg2.connect(stack.source_dsn)
        next_id = 20_000_000
        try:
            while not stop.is_set():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "insert into action (id, user_profile_id, session_id, action_type_id, action_time, "
                        "is_async, query) values (%s, 5, 'busy', 2, %s, false, 'q')",
                        (next_id, datetime(2025, 3, 2, 8, 0) + timedelta(seconds=next_id % 1000)),
                    )
                    cursor.execute(
                        "update action set query = query || '+' where id = (select min(id) from action)"
                    )
                    cursor.execute("delete from action where id = %s", (next_id - 3,))
                connection.commit()
                written.append(next_id)
                next_id += 1
                time.sleep(0.01)
        finally:
            connection.close()

    writer = threading.Thread(target=write_while_loading, daemon=True)
    writer.start()
    try:
        run_dag(pipeline_dag, logical_date=day(7), conf={"target_schema": schema})
    finally:
        stop.set()
        writer.join(timeout=30)
    assert len(written) > 10, "the writer ran during the bootstrap"
    run_dag(pipeline_dag, logical_date=day(8), conf={"target_schema": schema, "mode": "changes"})
    assert_target_is_source(source, target, schema)


def test_a_truncate_of_action_stops_the_capture_naming_a_full_refresh(
    pipeline_dag, generated, source, target, target_schema_of_test
):
    schema = target_schema_of_test
    run_dag(pipeline_dag, logical_date=day(7), conf={"target_schema": schema})
    rows = target_rows(target, schema)
    with source.cursor() as cursor:
        cursor.execute("truncate action")
    source.commit()
    run = run_dag(
        pipeline_dag, logical_date=day(8), conf={"target_schema": schema, "mode": "changes"}, expect="failed"
    )
    failed = {ti.task_id for ti in run.get_task_instances() if ti.state == "failed"}
    assert failed == {"export_action"}
    assert target_rows(target, schema) == rows, "the target is unchanged"
    run_dag(pipeline_dag, logical_date=day(8), conf={"target_schema": schema, "mode": "full_refresh"})
    assert target_rows(target, schema) == []


def fails_at_once_printing_the_repair(pipeline_dag, schema: str, monkeypatch, happened: str) -> dict:
    """A capture run that cannot read its slot: plan_run fails on its first try although it
    has retries (the retry policy fails a NeedsFix error at once), nothing after it runs, and
    on-call's line (the failure callback's, through a notifier) says first what happened,
    then the repair command. Returns the repair's trigger conf, read from the printed line."""
    import re
    import shlex

    from tests.e2e.notifiers import RecordingNotifier
    from tracking_sync.core.errors import NeedsFix
    from tracking_sync.core.repairs import full_refresh_command
    from tracking_sync.oncall.failures import RETRY_POLICY

    plan_task = pipeline_dag.get_task("plan_run")
    with monkeypatch.context() as patched:
        # Retries as deployed (the DAG's 3), 1 s apart: a retried error would show in seconds.
        patched.setattr(plan_task, "retries", 3)
        patched.setattr(plan_task, "retry_delay", timedelta(seconds=1))
        patched.setattr(plan_task, "retry_exponential_backoff", False)
        patched.setenv("TRACKING_SYNC_NOTIFIER", "tests.e2e.notifiers.RecordingNotifier")
        patched.setattr(RecordingNotifier, "sent", [])
        run = run_dag(
            pipeline_dag,
            logical_date=day(8),
            conf={"target_schema": schema, "mode": "changes"},
            expect="failed",
        )
        sent = list(RecordingNotifier.sent)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert {task for task, state in states.items() if state == "failed"} == {"plan_run"}, states
    assert {task for task, state in states.items() if state == "success"} == set(), "nothing moved"
    (plan_ti,) = [ti for ti in run.get_task_instances() if ti.task_id == "plan_run"]
    assert (plan_ti.max_tries, plan_ti.try_number) == (3, 1), "it had retries left and was not retried"
    (line,) = sent
    what = line.split(" what=", 1)[1]
    error_class, message = what.split(": ", 1)
    assert message.startswith(happened), line
    # The error's class, as the task raised it, is one the retry policy fails at once.
    import tracking_sync.capture.errors

    error = getattr(tracking_sync.capture.errors, error_class)(message)
    assert isinstance(error, NeedsFix)
    assert RETRY_POLICY.evaluate(error, try_number=1, max_tries=4).action.value == "fail"
    printed = re.search(r"Repair: (airflow dags trigger \S+ --conf '[^']*')", message)
    assert printed, f"no repair command in the first line: {line}"
    assert printed.group(1) == full_refresh_command(schema)
    argv = shlex.split(printed.group(1))  # as a shell gives it to the CLI
    assert argv[:4] == ["airflow", "dags", "trigger", pipeline_dag.dag_id]
    return json.loads(argv[argv.index("--conf") + 1])


def test_a_dropped_slot_fails_the_next_run_at_once_and_the_printed_repair_works(
    pipeline_dag, generated, source, target, target_schema_of_test, monkeypatch
):
    schema = target_schema_of_test
    slot = f"tracking_sync_{schema}"
    run_dag(pipeline_dag, logical_date=day(7), conf={"target_schema": schema})
    with source.cursor() as cursor:
        cursor.execute("select pg_drop_replication_slot(%s)", (slot,))
    source.commit()
    _late_changes(source)
    # The repair the error prints: a full refresh of this target (its trigger conf as printed).
    conf = fails_at_once_printing_the_repair(
        pipeline_dag, schema, monkeypatch, f"replication slot {slot} is gone from the source"
    )
    run_dag(pipeline_dag, logical_date=day(8), conf=conf)
    assert_target_is_source(source, target, schema)
    assert slot_confirmed(source, slot) is not None, "the slot is back"
    insert_actions(
        source, [(10_000_002, 2, "after", 2, datetime(2025, 3, 4, 9), None, None, None, False, "y")]
    )
    run_dag(pipeline_dag, logical_date=day(9), conf={"target_schema": schema, "mode": "changes"})
    assert_target_is_source(source, target, schema)


@pytest.fixture
def small_wal_source(monkeypatch):
    """A source PostgreSQL of the test's own, with demo data, the pipeline's source connection
    pointing at it: the test lowers its max_slot_wal_keep_size and recycles WAL, which would
    invalidate every idle slot of the shared cluster, other tests' included."""
    from devstack.demo_data import generate
    from devstack.postgres import LocalPostgres
    from devstack.stack import SOURCE_DATABASE, create_source_schema

    postgres = LocalPostgres().start()
    try:
        dsn = postgres.create_database(SOURCE_DATABASE)
        create_source_schema(dsn)
        generate(dsn, rows=1_500, seed=11, users=30, period_start="2025-03-01", period_days=6)
        monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_SOURCE", dsn.replace("postgresql://", "postgres://", 1))
        yield postgres, dsn
    finally:
        postgres.stop()


def set_max_slot_wal_keep_size(postgres, source, value: str) -> None:
    postgres.execute(f"alter system set max_slot_wal_keep_size = '{value}'")
    postgres.execute("select pg_reload_conf()")
    deadline = time.monotonic() + 30
    expected = fetch_rows(source, "select pg_size_pretty(pg_size_bytes(%s))", (value,))[0][0]
    while (
        fetch_rows(source, "select pg_size_pretty(pg_size_bytes(current_setting('max_slot_wal_keep_size')))")[
            0
        ][0]
        != expected
    ):
        assert time.monotonic() < deadline, f"max_slot_wal_keep_size = {value} was not reloaded"
        time.sleep(0.05)


def invalidate(postgres, source, slot: str) -> list[str]:
    """Make the slot fall more than max_slot_wal_keep_size behind, as a paused DAG does over
    days: 1 MB, a WAL segment switch, a checkpoint (which invalidates it), until
    pg_replication_slots says lost. Returns the wal_status seen on the way."""
    set_max_slot_wal_keep_size(postgres, source, "1MB")
    seen = []
    for _ in range(10):
        postgres.execute("select pg_logical_emit_message(false, 'tracking_sync_test', repeat('x', 8192))")
        postgres.execute("select pg_switch_wal()")
        postgres.execute("checkpoint")
        ((status,),) = fetch_rows(
            source, "select wal_status from pg_replication_slots where slot_name = %s", (slot,)
        )
        seen.append(status)
        if status == "lost":
            return seen
    raise AssertionError(f"slot {slot} was never invalidated: {seen}")


def test_an_invalidated_slot_fails_the_next_run_at_once_and_the_printed_repair_works(
    pipeline_dag, small_wal_source, target, target_schema_of_test, monkeypatch
):
    """The slot invalidated for real (wal_status = lost: its WAL recycled past
    max_slot_wal_keep_size) with changes in it: the next capture run fails at once naming
    the loss and the repair; the repair, run as printed, bootstraps again (the lost slot
    dropped, a new one, action reloaded whole) and the runs after it capture again."""
    postgres, dsn = small_wal_source
    schema = target_schema_of_test
    slot = f"tracking_sync_{schema}"
    with closing(psycopg2.connect(dsn)) as source:
        run_dag(pipeline_dag, logical_date=day(7), conf={"target_schema": schema})
        assert_target_is_source(source, target, schema)
        _late_changes(source)  # in the slot's WAL, lost with it
        assert invalidate(postgres, source, slot)[-1] == "lost"
        before = target_rows(target, schema)

        conf = fails_at_once_printing_the_repair(
            pipeline_dag, schema, monkeypatch, f"replication slot {slot} was invalidated (wal_status = lost)"
        )
        assert target_rows(target, schema) == before, "nothing moved"
        # As the error advises: max_slot_wal_keep_size raised, then the repair as printed.
        set_max_slot_wal_keep_size(postgres, source, "1GB")
        run_dag(pipeline_dag, logical_date=day(8), conf=conf)
        assert_target_is_source(source, target, schema)
        ((wal_status, confirmed),) = fetch_rows(
            source,
            "select wal_status, confirmed_flush_lsn - '0/0'::pg_lsn from pg_replication_slots "
            "where slot_name = %s",
            (slot,),
        )
        assert wal_status != "lost" and int(confirmed) == sync_state(target, schema)[2], "a new slot"

        insert_actions(
            source, [(10_000_003, 3, "after", 2, datetime(2025, 3, 5, 9), None, None, None, False, "z")]
        )
        with source.cursor() as cursor:
            cursor.execute("delete from action where id = (select min(id) from action)")
        source.commit()
        run_dag(pipeline_dag, logical_date=day(9), conf={"target_schema": schema, "mode": "changes"})
        assert_target_is_source(source, target, schema)
        assert slot_confirmed(source, slot) == sync_state(target, schema)[2]
