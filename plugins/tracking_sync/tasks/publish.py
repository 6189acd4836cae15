"""The tasks that publish and prove: the one-transaction publish, the slot advance, validate."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import task

from tracking_sync.assets import LOADED_TABLES
from tracking_sync.oncall.refusals import refusals_fail_at_once

log = logging.getLogger(__name__)


@task
@refusals_fail_at_once
def replace_action_rows(plan: dict, action_uploaded: dict, ti=None) -> dict[str, Any]:
    """Publish action in ONE transaction: the interval's (or every) staged row replaces the
    target's, or the captured changes are applied (tracking_sync.load.apply_changes); the
    target's sync state is written in the same transaction.

    Cleared after it succeeded, its staging table is gone (dropped, or swapped in as the
    target): the load's COPY fills it again from the run's manifest first, and the publish
    is done again, to the same result."""
    from contextlib import closing

    from tracking_sync.connections import redshift_connection, source_connection
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.load.apply_changes import apply_changes
    from tracking_sync.load.publish import publish_for_run, refuse_superseded_reload
    from tracking_sync.load.schema import staging_table_exists
    from tracking_sync.load.sync_state import read_sync_state

    run_plan, run_id = RunPlan.from_xcom(plan), getattr(ti, "run_id", "") or ""
    with closing(redshift_connection()) as target:
        refuse_superseded_reload(run_plan, read_sync_state(target, run_plan.target_schema))
        staged = staging_table_exists(run_plan, target)
    if not staged:
        from tracking_sync.operators import copy_again

        log.info(
            "%s.%s is gone (this run published before, or it was dropped): COPYing %s into it again",
            run_plan.target_schema,
            run_plan.staging_table,
            action_uploaded["manifest_uri"],
        )
        copy_again(plan, action_uploaded, {"ti": ti})
    if run_plan.applies_changes:
        capture = action_uploaded["capture"]
        with closing(redshift_connection()) as target:
            return apply_changes(
                target, run_plan, from_lsn=capture["from_lsn"], run_id=run_id, applied_at=run_plan.window_end
            ).summary()
    with closing(redshift_connection()) as target, closing(source_connection()) as source:
        return publish_for_run(run_plan, target, source, uploaded=action_uploaded, run_id=run_id)


@task
@refusals_fail_at_once
def advance_capture_slot(plan: dict, published: dict) -> dict[str, Any]:
    """Move the source's replication slot up to the LSN the target applied (committed by the
    publish), so the source can recycle the WAL before it. Lost or skipped, it is done by
    the next run: the target's applied LSN, not the slot, says what was applied."""
    from contextlib import closing

    from tracking_sync.capture.slot import advance_slot
    from tracking_sync.connections import redshift_connection, source_connection
    from tracking_sync.core.lsn import format_lsn
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.load.sync_state import read_sync_state

    run_plan = RunPlan.from_xcom(plan)
    if run_plan.capture != "logical" or run_plan.slot is None:
        return {"advanced_to": None}
    with closing(redshift_connection()) as target:
        state = read_sync_state(target, run_plan.target_schema)
    if state is None or state.applied_lsn is None:
        return {"advanced_to": None}
    with closing(source_connection()) as source:
        position = advance_slot(source, run_plan.slot, state.applied_lsn)
    log.info("slot %s confirmed up to %s", run_plan.slot, format_lsn(position))
    return {"advanced_to": format_lsn(position)}


@task(outlets=list(LOADED_TABLES))
@refusals_fail_at_once
def validate(
    plan: dict,
    published: dict,
    action_uploaded: dict,
    action_type_uploaded: dict,
    ti=None,
    outlet_events=None,
) -> None:
    """The parity checks of the plan, and the rows the publish placed outside its interval.

    With logical capture, differences that changes committed on the source after the
    target's applied LSN explain (still in the slot: the next run applies and checks them)
    are reported as pending and pass (tracking_sync.validate.pending): the summary and the
    report below say which, and the XCom keeps them (`pending`).

    Passed, it publishes the target tables' Assets (tracking_sync.assets) with the run's
    interval and row counts; failed, it raises and Airflow emits no asset event."""
    from contextlib import closing, nullcontext

    from airflow.sdk.exceptions import AirflowFailException

    from tracking_sync.assets import load_event_extras
    from tracking_sync.connections import (
        redshift_connection,
        source_connection,
        source_streaming_connection,
    )
    from tracking_sync.core.names import REPORT_XCOM_KEY
    from tracking_sync.core.plan import RunPlan
    from tracking_sync.validate.run import validate_for_run

    run_plan = RunPlan.from_xcom(plan)
    # The slot is read through psycopg2 (the capture's driver), beside the streaming source.
    reads_slot = run_plan.capture == "logical" and run_plan.slot is not None
    # A data mismatch raises AirflowFailException: no retry (a retry would find the same data);
    # a malformed check is a NeedsFix error (no retry either); connection errors retry.
    with (
        closing(source_streaming_connection()) as source_conn,
        closing(redshift_connection()) as target_conn,
        closing(source_connection()) if reads_slot else nullcontext() as capture_conn,
    ):
        report = validate_for_run(
            run_plan,
            source_conn,
            target_conn,
            run_id=ti.run_id,
            placed_outside_ids=(published or {}).get("placed_outside_ids", []),
            touched_users=(published or {}).get("touched_users"),
            touched_ids=(published or {}).get("touched_ids", []),
            capture_conn=capture_conn,
        )
    ti.xcom_push(key=REPORT_XCOM_KEY, value=report.to_dict())
    log.info("%s\n%s", report.summary(), report.format_table())
    if not report.passed:
        raise AirflowFailException(
            f"{report.summary()} -- full report: the task log above and XCom "
            f"'{REPORT_XCOM_KEY}' of task {ti.task_id}, run {ti.run_id}"
        )
    extras = load_event_extras(
        plan, action_uploaded, action_type_uploaded, published, dag_id=ti.dag_id, run_id=ti.run_id
    )
    for asset in LOADED_TABLES:
        outlet_events[asset].extra = extras[asset.name]
