"""Every repair command the validation report prints runs as printed, through Airflow's real
CLI, scheduler and backfill machinery, and its runs succeed (validate included).

The commands come from tracking_sync.validate.diagnosis.repair_steps, the function that writes the
report's repair lines, for each kind of failure: no day singled out (and a TIMESTAMP
target, which prints the same full refresh), differing days, and a scoped run whose users
differ outside its days; and the trigger with a logical date that plan_run prints when it
refuses a run without a data interval. A non-default target schema travels in every
command's conf.
"""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime

import pytest

from devstack import demo_data
from tests.dag_helpers import (
    DAG_ID,
    RUN_TIMEOUT,
    airflow_cli,
    new_backfill,
    wait_for_backfill,
    wait_for_backfill_completed,
)
from tracking_sync.core.errors import InvalidParams
from tracking_sync.core.plan import plan_run
from tracking_sync.validate.diagnosis import repair_steps

pytestmark = pytest.mark.integration


def _cli_lines(steps: list[str]) -> list[list[str]]:
    """The report's `CLI: ...` lines, split as a shell would."""
    return [shlex.split(step.removeprefix("CLI: ")) for step in steps if step.startswith("CLI: ")]


def _conf_of(deployment, run_id: str) -> dict:
    (conf,) = deployment.query("select conf from dag_run where run_id = %s", (run_id,))[0]
    return conf if isinstance(conf, dict) else json.loads(conf or "{}")


def test_every_kind_of_repair_command_runs_as_printed(airflow_deployment, stack, target_schema_of_test):
    deployment, schema = airflow_deployment, target_schema_of_test
    demo_data.generate(stack.source_dsn, rows=1_500, users=30, period_start="2025-03-01", period_days=4)

    # No day singled out (or a TIMESTAMP target): a full refresh, into the same schema.
    wrong_type = _cli_lines(repair_steps([], wrong_type=True, target_schema=schema))
    (full_refresh,) = _cli_lines(repair_steps([], scope="full", target_schema=schema))
    assert wrong_type == [full_refresh]
    airflow_cli(deployment, full_refresh)
    ((run_id, state, *_),) = deployment.wait_for_runs(
        "dag_run.dag_id = %s and dag_run.run_type = 'manual'", (DAG_ID,), 1, timeout=RUN_TIMEOUT
    )
    assert state == "success", deployment.task_states([run_id])
    assert _conf_of(deployment, run_id) == {"mode": "full_refresh", "target_schema": schema}

    # Days differ: a backfill of those days, reprocessing their runs.
    (days,) = _cli_lines(repair_steps(["2025-03-02", "2025-03-03"], target_schema=schema))
    backfill = new_backfill(deployment, lambda: airflow_cli(deployment, days))
    runs = wait_for_backfill(deployment, backfill, 2, until_completed=False)
    assert [(state, start.date().isoformat()) for _, state, start, _ in runs] == [
        ("success", "2025-03-02"),
        ("success", "2025-03-03"),
    ]

    # The report's full refresh without a schema: the default one, loaded in full (the
    # incremental backfill at the end needs it). Run here, while the scheduler has yet to mark
    # the backfill above completed (a timer of 30 s), before the next backfill can be created.
    (default_full_refresh,) = _cli_lines(repair_steps([], scope="full"))
    airflow_cli(deployment, default_full_refresh)
    deployment.wait_for_runs(
        "dag_run.dag_id = %s and dag_run.run_type = 'manual'", (DAG_ID,), 2, timeout=RUN_TIMEOUT
    )
    wait_for_backfill_completed(deployment, backfill)

    # Users differ but no day of the interval does: the run's own day again, validated in full.
    (scoped,) = _cli_lines(
        repair_steps(
            [], scope="scoped", rerun_interval_start=datetime(2025, 3, 3, tzinfo=UTC), target_schema=schema
        )
    )
    backfill = new_backfill(deployment, lambda: airflow_cli(deployment, scoped))
    ((run_id, state, start, _),) = wait_for_backfill(deployment, backfill, 1, until_completed=True)
    assert (state, start.date().isoformat()) == ("success", "2025-03-03"), deployment.task_states([run_id])
    assert _conf_of(deployment, run_id) == {"validation": "full", "target_schema": schema}

    # The command plan_run prints when it refuses an incremental run without a data interval:
    # a backfill of the day that had ended when it was triggered (default schema: loaded in
    # full above, by the report's own full refresh command).
    with pytest.raises(InvalidParams) as refused:
        plan_run({"mode": "incremental"}, None, None, run_after=datetime(2025, 3, 5, 7, 30, tzinfo=UTC))
    printed = re.search(r"airflow backfill create [^)]+", str(refused.value)).group()
    assert "--from-date 2025-03-04 --to-date 2025-03-04" in printed
    backfill = new_backfill(deployment, lambda: airflow_cli(deployment, shlex.split(printed)))
    ((run_id, state, start, _),) = wait_for_backfill(deployment, backfill, 1, until_completed=False)
    assert (state, start.date().isoformat()) == ("success", "2025-03-04"), deployment.task_states([run_id])
