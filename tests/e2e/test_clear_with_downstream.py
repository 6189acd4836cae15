"""Issue 20, on-call's own move: fix the cause, then clear the failed task with its downstream.

Through Airflow's real scheduler (the shared `airflow_deployment`), with the REST call the
UI's Clear dialog makes (Downstream ticked): for every task of the DAG, and one map index of
each mapped task, a clear with its downstream after the run succeeded ends in a green run
and a target equal to the source row for row (on the nightly run, the tasks its failure
cases clear from the succeeded run are cleared there: CLEARED_BY_A_FAILURE). Then, for every
task, a failure with a real cause in that task (the run's task ends failed, at once),
repaired, and the task cleared the same way (or, where the task cannot make its input again,
the task its one line names):

    plan_run                 the source role's SELECT on action_type revoked (its preflight);
                             on the full refresh, whose plan_run also cuts action's id
                             ranges, its SELECT on action
    create_schema,           the Redshift user's CREATE on the database revoked
    load_action_type
    export_action_type       a file where the scratch folder was
    upload_action_type,      a published part gone: cleared as printed (its export)
    upload_action[0]
    export_action[2]         the source role's SELECT on action revoked (the full refresh)
    write_action_manifest    S3 refusing the aws_default key (moto's access check switched on)
    load_action_staging      the Redshift user's CREATE on its own schema revoked (the load
                             creates its staging table); a part gone: cleared as printed
                             (export_action); a manifest gone is written again, no failure
    replace_action_rows      the target's action owned by another user (the swap is the
                             owner's; the full refresh)
    advance_capture_slot     the source role's login disabled (NOLOGIN)
    validate                 a damaged target row

Each fault is made by an administrator while the run has ended, just before the clear: the
cleared task runs first (its downstream waits for it), so the fault meets that task and no
earlier one. plan_run's case is the nightly run's first try (its preflight checks every
grant, so a revoke before a run fails plan_run). No test-only hook anywhere: real grants,
roles, owners, files and S3 answers. One deployment, one run at a time, the data reused: a
full refresh in three partitions, then a nightly run of the captured changes.

The matrix's time is printed (`matrix: ... s`); see docs/testing.md.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest

from devstack import demo_data
from devstack.grants import REDSHIFT_USER, SOURCE_ROLE, run_statements
from tests.dag_helpers import DAG_ID, RUN_TIMEOUT, load_dag
from tests.pipeline_helpers import (
    assert_same_rows,
    change_source_within,
    fetch_rows,
    source_rows,
    target_rows,
)

pytestmark = pytest.mark.integration

FULL_REFRESH_AT = datetime(2025, 3, 10, tzinfo=UTC)  # after every row of the demo data
PARTITIONS = 3

# Every task, in the DAG's order, with its downstream; the mapped ones at one index (the
# test checks these are the DAG's tasks, all of them).
UNMAPPED = [
    "plan_run",
    "create_schema",
    "export_action_type",
    "upload_action_type",
    "load_action_type",
    "write_action_manifest",
    "load_action_staging",
    "replace_action_rows",
    "advance_capture_slot",
    "validate",
]
MAPPED = ["export_action", "upload_action"]
# On the nightly run, the tasks its failure cases clear from the succeeded run: each case's
# fault stops the task before it changes anything, so the clear after the repair meets what a
# clear after success meets (the earlier tries' work in place), and ends green and equal the
# same way. These are not cleared a second time (about 40 s of the matrix).
CLEARED_BY_A_FAILURE = {
    "create_schema",  # the Redshift user's CREATE on the database revoked
    "load_action_type",  # the same
    "export_action_type",  # a file where the scratch folder was
    "export_action",  # [0]: cleared as printed, a published part gone (upload_action[0] fails)
    "write_action_manifest",  # S3 refusing the key
    "load_action_staging",  # CREATE on its own schema revoked
    "advance_capture_slot",  # the source role's login disabled
}


class Matrix:
    """The deployment, the databases and the clock of the matrix."""

    def __init__(self, deployment, stack, schema: str) -> None:
        self.deployment, self.stack, self.schema = deployment, stack, schema
        self.token = deployment.access_token()
        self.source = psycopg2.connect(stack.source_dsn)
        self.target = psycopg2.connect(stack.redshift.dsn())
        self.timings: list[str] = []

    def close(self) -> None:
        self.source.close()
        self.target.close()

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        return self.deployment.api(method, path, body, token=self.token)

    def trigger(self, conf: dict, logical_date: datetime) -> str:
        run_id = f"{conf['mode']}_{uuid.uuid4().hex[:6]}"
        self.api(
            "POST",
            f"/api/v2/dags/{DAG_ID}/dagRuns",
            {"dag_run_id": run_id, "logical_date": logical_date.isoformat(), "conf": conf},
        )
        return run_id

    def clear(self, run_id: str, task_id: str, map_index: int | None = None) -> None:
        """What the UI's Clear dialog sends for one task instance, "Downstream" ticked."""
        self.api(
            "POST",
            f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
            {
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": [task_id if map_index is None else [task_id, map_index]],
                "include_downstream": True,
                "include_upstream": False,
                "only_failed": False,
                "reset_dag_runs": True,
            },
        )

    def wait(self, run_id: str) -> tuple[str, dict[tuple[str, int], tuple[str, int]]]:
        """The run's end state and {(task, map index): (state, try)}, once it has ended; a
        task going up for retry ends the wait too (on-call does not wait for a retry)."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            self.deployment.check_alive()
            ((state,),) = self.deployment.query("select state from dag_run where run_id = %s", (run_id,))
            tasks = {
                (task, index): (task_state, tries)
                for task, index, task_state, tries in self.deployment.query(
                    "select task_id, map_index, state, try_number from task_instance where run_id = %s",
                    (run_id,),
                )
            }
            retrying = [key for key, (task_state, _) in tasks.items() if task_state == "up_for_retry"]
            if state in ("success", "failed") or retrying:
                return state, tasks
            assert time.monotonic() < deadline, f"run {run_id} not ended after {RUN_TIMEOUT}s: {tasks}"
            time.sleep(0.2)

    def log(self, run_id: str, task_id: str, map_index: int = -1) -> str:
        ((tries,),) = self.deployment.query(
            "select try_number from task_instance where run_id = %s and task_id = %s and map_index = %s",
            (run_id, task_id, map_index),
        )
        folder = (
            self.deployment.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
        )
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        path = folder / f"attempt={max(tries, 1)}.log"
        return path.read_text(errors="replace") if path.exists() else f"({path} missing)"

    def assert_green_and_equal(self, run_id: str, what: str) -> None:
        state, tasks = self.wait(run_id)
        bad = {key: value for key, value in tasks.items() if value[0] != "success"}
        detail = "".join(
            f"\n--- {task}[{index}]\n{self.log(run_id, task, index)[-3000:]}" for task, index in bad
        )
        assert state == "success" and not bad, f"{what}: run {state}, tasks not green: {bad}{detail}"
        assert_same_rows(source_rows(self.source), target_rows(self.target, self.schema), what)
        types = "select id, name from {}action_type order by id"
        assert fetch_rows(self.source, types.format("")) == fetch_rows(
            self.target, types.format(f"{self.schema}.")
        ), f"{what}: action_type"

    def clear_and_check(
        self, run_id: str, task_id: str, map_index: int | None = None, what: str = ""
    ) -> None:
        started = time.monotonic()
        label = task_id if map_index is None else f"{task_id}[{map_index}]"
        self.clear(run_id, task_id, map_index)
        self.assert_green_and_equal(run_id, f"{what} {label} cleared with its downstream")
        self.timings.append(f"{what} {label}: {time.monotonic() - started:.1f}s")

    def expect_failed(self, run_id: str, task_id: str, map_index: int = -1) -> str:
        """The run ended (or the task went up for retry) with `task_id` failed: its log."""
        _, tasks = self.wait(run_id)
        state = tasks[(task_id, map_index)][0]
        assert state in ("failed", "up_for_retry"), f"{task_id}[{map_index}] is {state}, not failed: {tasks}"
        return self.log(run_id, task_id, map_index)

    def source_admin(self, *statements: str) -> None:
        """Statements on the source as its administrator (grants, roles)."""
        run_statements(self.stack.source_dsn, statements)

    def target_admin(self, *statements: str) -> None:
        """Statements on the Redshift stand-in's database as its administrator."""
        run_statements(self.stack.redshift.backend_dsn(), statements)

    def s3_keys(self, prefix: str) -> list[str]:
        client = self.stack.s3.client()
        listed = client.list_objects_v2(Bucket=self.stack.s3.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))


def _plan(deployment, run_id: str) -> dict:
    rows = deployment.query(
        "select key, value from xcom where dag_id = %s and run_id = %s and task_id = 'plan_run'",
        (DAG_ID, run_id),
    )
    return dict(rows)


# What a task that cannot make its input again says: the exact task to clear instead.
PRINTED_CLEAR = re.compile(
    r"clear (\w+)(?: \(map index (\d+)\))? of (?:run (\S+)|this run) with its downstream"
)


def clear_as_printed(matrix: Matrix, run_id: str, log: str, what: str) -> str:
    """Clear the task the failure's line names, as it names it; the task's name."""
    found = PRINTED_CLEAR.search(log)
    assert found, f"{what}: no task to clear named in:\n{log[-3000:]}"
    task_id, index, named_run = found.group(1), found.group(2), found.group(3)
    assert named_run in (None, run_id), f"{what}: names run {named_run}, not {run_id}"
    matrix.clear_and_check(run_id, task_id, None if index is None else int(index), what)
    return task_id if index is None else f"{task_id}[{index}]"


def full_refresh_failures(matrix: Matrix, run_id: str, prefix: str) -> None:
    """On the full refresh: a manifest gone (repaired by the load), a part gone (the load
    fails at once and names the export), a damaged target row (validate fails; the row
    repaired, validate cleared)."""
    client, bucket = matrix.stack.s3.client(), matrix.stack.s3.bucket
    manifest = f"{prefix}/action/full_refresh/manifest.json"
    client.delete_object(Bucket=bucket, Key=manifest)
    matrix.clear_and_check(run_id, "load_action_staging", what="full refresh, manifest gone:")
    assert "written again from the upload" in matrix.log(run_id, "load_action_staging")

    part = next(key for key in matrix.s3_keys(f"{prefix}/action/full_refresh/") if "part-01-" in key)
    client.delete_object(Bucket=bucket, Key=part)
    started = time.monotonic()
    matrix.clear(run_id, "load_action_staging")
    log = matrix.expect_failed(run_id, "load_action_staging")
    assert "StagedFilesExpired" in log and part in log, log[-3000:]
    assert matrix.wait(run_id)[0] == "failed", "a part that is gone fails at once, no retry"
    cleared = clear_as_printed(matrix, run_id, log, "full refresh, a part gone:")
    assert cleared == "export_action", cleared
    matrix.timings[-1] += (
        f" (the load failed, then {cleared} cleared as printed: {time.monotonic() - started:.1f}s)"
    )

    ((row_id, query),) = fetch_rows(
        matrix.target, f"select id, query from {matrix.schema}.action order by id limit 1"
    )
    with matrix.target.cursor() as cursor:
        cursor.execute(f"update {matrix.schema}.action set query = 'damaged' where id = %s", (row_id,))
    matrix.target.commit()
    started = time.monotonic()
    matrix.clear(run_id, "validate")
    log = matrix.expect_failed(run_id, "validate")
    assert "parity FAILED" in log, log[-3000:]
    with matrix.target.cursor() as cursor:
        cursor.execute(f"update {matrix.schema}.action set query = %s where id = %s", (query, row_id))
    matrix.target.commit()
    matrix.clear_and_check(run_id, "validate", what="full refresh, a damaged row repaired:")
    matrix.timings[-1] += f" (with the failed validate: {time.monotonic() - started:.1f}s)"


def nightly_failures(matrix: Matrix, run_id: str, prefix: str, label: str) -> None:
    """On the nightly run: the scratch folder unusable (the export fails; the folder back,
    the export cleared), a published part gone (the upload fails at once and names its
    export; cleared as printed)."""
    scratch = Path(matrix.deployment.env["TRACKING_SYNC_STAGING_DIR"])
    aside = scratch.with_name(scratch.name + "-aside")
    scratch.rename(aside)
    scratch.write_text("a file where the scratch folder was")
    started = time.monotonic()
    try:
        matrix.clear(run_id, "export_action_type")
        matrix.expect_failed(run_id, "export_action_type")
    finally:
        scratch.unlink()
        aside.rename(scratch)
    matrix.clear_and_check(run_id, "export_action_type", what="nightly, scratch folder back:")
    matrix.timings[-1] += f" (with the failed export: {time.monotonic() - started:.1f}s)"

    client, bucket = matrix.stack.s3.client(), matrix.stack.s3.bucket
    parts = [key for key in matrix.s3_keys(f"{prefix}/action_changes/{label}/") if "/part-" in key]
    assert parts, f"no part of the nightly run under {prefix}/action_changes/{label}/"
    client.delete_object(Bucket=bucket, Key=parts[0])
    started = time.monotonic()
    matrix.clear(run_id, "upload_action", 0)
    log = matrix.expect_failed(run_id, "upload_action", 0)
    assert "StagingPartMissing" in log, log[-3000:]
    cleared = clear_as_printed(matrix, run_id, log, "nightly, a published part gone:")
    assert cleared == "export_action[0]", cleared
    matrix.timings[-1] += (
        f" (the upload failed, then {cleared} cleared as printed: {time.monotonic() - started:.1f}s)"
    )


def fails_then_green(
    matrix: Matrix,
    run_id: str,
    task_id: str,
    map_index: int | None = None,
    *,
    fault: Callable[[], None],
    repair: Callable[[], None],
    says: str,
    what: str,
) -> None:
    """The fault made, the task cleared with its downstream fails in that task, at once (no
    retry: the run ends failed) with `says` in its log; the cause repaired, the same clear
    ends green and equal."""
    label = task_id if map_index is None else f"{task_id}[{map_index}]"
    index = -1 if map_index is None else map_index
    started = time.monotonic()
    fault()
    try:
        matrix.clear(run_id, task_id, map_index)
        log = matrix.expect_failed(run_id, task_id, index)
        state, tasks = matrix.wait(run_id)
        assert state == "failed", f"{what} {label}: fails at once, not retried: {tasks}"
        ran = sorted(key for key, (task_state, _) in tasks.items() if task_state == "failed")
        assert ran == [(task_id, index)], f"{what}: failed elsewhere than {label}: {ran}"
        assert says.lower() in log.lower(), f"{what} {label}: no {says!r} in\n{log[-3000:]}"
    finally:
        repair()
    matrix.clear_and_check(run_id, task_id, map_index, what)
    matrix.timings[-1] += f" (with the failed {label}: {time.monotonic() - started:.1f}s)"


def full_refresh_refusals(matrix: Matrix, run_id: str) -> None:
    """On the full refresh (the only run whose plan_run cuts action from the source's
    statistics, and whose publish swaps the target table): the source role's SELECT on action
    revoked, plan_run fails (its preflight), then export_action[2], each time the grant back
    and the task cleared (plan_run's clear cuts the partitions again and runs them all); the
    target's action given to another user, the publish's swap is refused (only the owner
    renames a table), the table given back as the line says, the publish cleared."""
    revoke = f"revoke select on public.action from {SOURCE_ROLE}"
    grant = f"grant select on public.action to {SOURCE_ROLE}"
    for task_id, index, says in (
        ("plan_run", None, f"{SOURCE_ROLE} lacks SELECT on table public.action"),
        (
            "export_action",
            PARTITIONS - 1,
            f"grant select on public.action, public.action_type to {SOURCE_ROLE}",
        ),
    ):
        fails_then_green(
            matrix,
            run_id,
            task_id,
            index,
            fault=lambda: matrix.source_admin(revoke),
            repair=lambda: matrix.source_admin(grant),
            says=says,
            what="full refresh, SELECT on action granted again:",
        )
    action = f"{matrix.schema}.action"
    fails_then_green(
        matrix,
        run_id,
        "replace_action_rows",
        fault=lambda: matrix.target_admin(f"alter table {action} owner to current_user"),
        repair=lambda: matrix.target_admin(f"alter table {action} owner to {REDSHIFT_USER}"),
        says=f"ALTER TABLE {action} OWNER TO {REDSHIFT_USER}",  # in the run's schema, as run
        what="full refresh, action given back to the pipeline's user:",
    )


def nightly_refusals(matrix: Matrix, run_id: str, plan: dict, prefix: str) -> None:
    """On the nightly run, each task's own failure, repaired, the task cleared:
    - create_schema, load_action_type: the Redshift user's CREATE on the database revoked
      (`create schema if not exists` needs it even when the schema exists; the load makes
      sure of the schema before its COPY);
    - load_action_staging: the user's CREATE on its own schema revoked (the load creates the
      run's staging table before its COPY);
    - write_action_manifest: S3 refuses the aws_default key (moto's access check on: the key
      unknown, InvalidAccessKeyId), then takes it again;
    - advance_capture_slot: the source role's login disabled (NOLOGIN);
    - upload_action_type: its published part gone: it fails at once naming its export,
      cleared as printed."""
    database, schema = matrix.stack.redshift.database, matrix.schema
    for task_id in ("create_schema", "load_action_type"):
        fails_then_green(
            matrix,
            run_id,
            task_id,
            fault=lambda: matrix.target_admin(f'revoke create on database "{database}" from {REDSHIFT_USER}'),
            repair=lambda: matrix.target_admin(f'grant create on database "{database}" to {REDSHIFT_USER}'),
            says=f"grant create on database {database} to {REDSHIFT_USER}",
            what="nightly, CREATE on the database granted again:",
        )

    # The user owns the schema it made; an administrator can still revoke the owner's CREATE.
    fails_then_green(
        matrix,
        run_id,
        "load_action_staging",
        fault=lambda: matrix.target_admin(f"revoke create on schema {schema} from {REDSHIFT_USER}"),
        repair=lambda: matrix.target_admin(f"grant create on schema {schema} to {REDSHIFT_USER}"),
        says=f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {REDSHIFT_USER}",
        what="nightly, CREATE on the schema granted again:",
    )

    fails_then_green(
        matrix,
        run_id,
        "write_action_manifest",
        fault=lambda: matrix.stack.s3.refuse_keys(True),
        repair=lambda: matrix.stack.s3.refuse_keys(False),
        says="S3 refused the aws_default connection's credentials (InvalidAccessKeyId",
        what="nightly, the S3 key taken again:",
    )

    fails_then_green(
        matrix,
        run_id,
        "advance_capture_slot",
        fault=lambda: matrix.source_admin(f"alter role {SOURCE_ROLE} nologin"),
        repair=lambda: matrix.source_admin(f"alter role {SOURCE_ROLE} login"),
        says=f"refused the login of {SOURCE_ROLE}",
        what="nightly, the source role's login back:",
    )

    client, bucket = matrix.stack.s3.client(), matrix.stack.s3.bucket
    parts = [key for key in matrix.s3_keys(f"{prefix}/action_type/{plan['slice_label']}/") if "/part-" in key]
    assert parts, f"no action_type part of the nightly run under {prefix}/action_type/"
    client.delete_object(Bucket=bucket, Key=parts[0])
    started = time.monotonic()
    matrix.clear(run_id, "upload_action_type")
    log = matrix.expect_failed(run_id, "upload_action_type")
    assert "StagingPartMissing" in log, log[-3000:]
    assert matrix.wait(run_id)[0] == "failed", "a part that is gone fails at once, no retry"
    cleared = clear_as_printed(matrix, run_id, log, "nightly, the action_type part gone:")
    assert cleared == "export_action_type", cleared
    matrix.timings[-1] += (
        f" (upload_action_type failed, then {cleared} cleared as printed: {time.monotonic() - started:.1f}s)"
    )


def test_the_matrix_names_every_task_of_the_dag(airflow_db):
    assert sorted(UNMAPPED + MAPPED) == sorted(load_dag().task_ids), "a task the matrix never clears"


def test_every_task_cleared_with_its_downstream_ends_green_and_equal(
    airflow_deployment, stack, target_schema_of_test
):
    """After success, every task of the nightly run (the mapped ones at index 0), and
    export_action[2] and replace_action_rows of a full refresh in three partitions, cleared
    with its downstream: green, and the target equal to the source. Then, for every task, a
    failure with a real cause in it, repaired and the task cleared the same way, or cleared
    as the failure's line says (the module's table)."""
    deployment, schema = airflow_deployment, target_schema_of_test
    prefix = deployment.env["TRACKING_SYNC_PREFIX"]
    demo_data.generate(
        stack.source_dsn, rows=1_200, seed=20, users=25, period_start="2025-03-01", period_days=4
    )
    matrix = Matrix(deployment, stack, schema)
    started = time.monotonic()
    try:
        # The full refresh, in three partitions: export_action[2] and upload_action[2] exist.
        full = matrix.trigger(
            {"mode": "full_refresh", "target_schema": schema, "partitions": PARTITIONS}, FULL_REFRESH_AT
        )
        matrix.assert_green_and_equal(full, "the full refresh")
        matrix.timings.append(f"full refresh: {time.monotonic() - started:.1f}s")
        # One index of three: the manifest lists it beside the two untouched partitions.
        matrix.clear_and_check(full, "export_action", PARTITIONS - 1, "full refresh:")
        # The publish swapped the staging table in: cleared, it COPies it again, swaps again.
        matrix.clear_and_check(full, "replace_action_rows", what="full refresh:")
        full_refresh_failures(matrix, full, prefix)
        full_refresh_refusals(matrix, full)

        # A nightly run: the changes captured since the full refresh (late corrections). Its
        # plan_run fails first (its preflight: the source role lost SELECT on action_type);
        # the grant back, plan_run cleared with its downstream makes the whole run.
        change_source_within(matrix.source, datetime(2025, 3, 2, tzinfo=UTC))
        matrix.source_admin(f"revoke select on public.action_type from {SOURCE_ROLE}")
        try:
            nightly = matrix.trigger(
                {"mode": "changes", "target_schema": schema}, datetime.now(UTC).replace(microsecond=0)
            )
            log = matrix.expect_failed(nightly, "plan_run")
            assert matrix.wait(nightly)[0] == "failed", "a privilege missing fails plan_run at once"
            assert f"{SOURCE_ROLE} lacks SELECT on table public.action_type" in log, log[-3000:]
        finally:
            matrix.source_admin(f"grant select on public.action_type to {SOURCE_ROLE}")
        matrix.clear_and_check(
            nightly, "plan_run", what="the nightly run, SELECT on action_type granted again:"
        )
        plan = _plan(deployment, nightly)
        assert plan["action_load"] == "changes", plan
        in_order = [*UNMAPPED[:5], *MAPPED, *UNMAPPED[5:]]
        for task_id in [task_id for task_id in in_order if task_id not in CLEARED_BY_A_FAILURE]:
            matrix.clear_and_check(nightly, task_id, 0 if task_id in MAPPED else None, "nightly:")
        nightly_failures(matrix, nightly, prefix, plan["slice_label"])
        nightly_refusals(matrix, nightly, plan, prefix)

        # The full refresh's publish, cleared after the nightly applied changes past its
        # export, would put older rows back: refused at once, nothing changed.
        matrix.clear(full, "replace_action_rows")
        log = matrix.expect_failed(full, "replace_action_rows")
        assert "ReloadSuperseded" in log and "trigger a new full refresh" in log, log[-3000:]
        assert_same_rows(source_rows(matrix.source), target_rows(matrix.target, schema), "after the refusal")
    finally:
        matrix.close()
        print("\n".join(matrix.timings))
        print(f"matrix: {time.monotonic() - started:.1f}s")
