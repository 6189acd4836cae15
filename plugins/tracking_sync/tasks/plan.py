"""The planning task: the run plan (what this run moves and how, and the id ranges of action)."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import task

from tracking_sync.core.names import PLAN_XCOM_KEY
from tracking_sync.oncall.refusals import refusals_fail_at_once

log = logging.getLogger(__name__)


@task
@refusals_fail_at_once
def plan_run(
    params=None, dag_run=None, data_interval_start=None, data_interval_end=None, ti=None
) -> list[dict[str, Any]]:
    """Check the params, the conf keys, the interval and the settings, and probe the scratch
    area (a tiny write and delete); then decide how action moves this run from the target's
    sync state and the source's slot (tracking_sync.planning: a bootstrap, a full refresh,
    the captured changes, or the interval). Bad params or settings, a privilege a role lacks
    (tracking_sync.privileges), and a source that cannot capture, fail here, before any data moves, at once (tracking_sync.oncall.failures).

    Its XComs: `plan`, the run plan every task takes, and each of the plan's keys as an XCom
    of its own (`target_schema`, `action_load`, ...). Its return value: the id ranges of action
    that export_action is mapped over (one, the whole slice, unless a partitioned full
    refresh: tracking_sync.extract.partitions), the return value since Airflow maps a task
    over nothing else; a task of their own would cost a task's start on every run."""
    from contextlib import closing

    from tracking_sync.connections import redshift_connection, s3_client, source_connection
    from tracking_sync.core.plan import plan_run as make_plan
    from tracking_sync.core.settings import Settings
    from tracking_sync.extract.partitions import action_partitions
    from tracking_sync.oncall.notifications import notify
    from tracking_sync.planning import plan_against_state
    from tracking_sync.privileges import check_privileges

    settings = Settings.from_env()
    plan = make_plan(
        params,
        data_interval_start,
        data_interval_end,
        conf=getattr(dag_run, "conf", None),
        run_after=getattr(dag_run, "run_after", None),
        default_partitions=settings.partitions,
    )
    run_id = getattr(dag_run, "run_id", "run")
    area = settings.scratch
    area.probe(None if area.is_local else s3_client(), f"{plan.slice_label}-{run_id}")
    with closing(source_connection()) as source, closing(redshift_connection()) as target:
        # Every privilege the run needs, before anything reads or writes (one failure, each named).
        check_privileges(source, target, plan.target_schema, logical=settings.capture == "logical")
        plan, slot = plan_against_state(
            plan,
            settings,
            source=source,
            target=target,
            run_type=str(getattr(dag_run, "run_type", "") or ""),
            run_id=run_id,
            run_is_active=lambda other: _run_is_active(ti, other),
        )
        partitions = action_partitions(plan, source)
    log.info(
        "this run: action %s (capture %s%s), exported in %s",
        plan.action_load,
        plan.capture,
        ", bootstrap" if plan.bootstrap else "",
        f"{len(partitions)} partitions" if len(partitions) > 1 else "one piece",
    )
    if slot is not None:
        log.info("%s", slot.line())
        warning = slot.warning(settings.slot_max_retained_bytes)
        if warning:
            notify(warning)
    planned = plan.to_xcom()
    ti.xcom_push(key=PLAN_XCOM_KEY, value=planned)
    for key, value in planned.items():
        ti.xcom_push(key=key, value=value)
    return [partition.to_xcom() for partition in partitions]


def _run_is_active(ti: Any, run_id: str) -> bool:
    """Whether another run of the DAG is still queued or running (a run that no longer exists
    is not); when Airflow cannot say, it is taken as active, so this run waits."""
    from tracking_sync.core.names import DAG_ID

    if ti is None:
        return True
    try:
        state = ti.get_dagrun_state(dag_id=DAG_ID, run_id=run_id)
    except Exception as error:  # noqa: BLE001 - asked of the API server; unknown is "active"
        return "not found" not in str(error).lower() and "404" not in str(error)
    return str(getattr(state, "value", state)).lower() in ("queued", "running")
