"""A run that plans while another run bootstraps the target waits for it inside plan_run,
however long the bootstrap takes (up to a bound a try), on the real target (the Redshift
stand-in) and source: the sync state it polls is the one the bootstrap's publish writes.

Before, it waited only by failing and being retried (BootstrapInProgress: 1 minute apart, the
DAG's 3 retries), so a bootstrap longer than ~3 minutes failed the waiting run.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import closing
from datetime import UTC, datetime

import psycopg2
import pytest

import tracking_sync.planning as planning
from tracking_sync.capture.slot import create_slot, slot_name
from tracking_sync.core.errors import BootstrapInProgress
from tracking_sync.core.params import DEFAULT_PARAMS
from tracking_sync.core.plan import plan_run
from tracking_sync.core.settings import Settings
from tracking_sync.load.sync_state import claim_bootstrap, read_sync_state, write_sync_state
from tracking_sync.oncall.failures import RETRY_POLICY

pytestmark = pytest.mark.integration

BOOTSTRAPPING_RUN = "scheduled__2025-03-08T00:00:00+00:00"
WAITING_RUN = "backfill__2025-03-04T00:00:00+00:00"
BOOTSTRAP_SECONDS = 1.5  # how long the other run's bootstrap takes here


@pytest.fixture
def claimed(stack_env, stack, target_schema_of_test, monkeypatch):
    """The target schema claimed for its bootstrap by another run (as that run's plan_run
    does); the waiting run polls every 0.1 s."""
    from tracking_sync.connections import redshift_connection

    monkeypatch.setattr(planning, "BOOTSTRAP_POLL_SECONDS", 0.1)
    schema = target_schema_of_test
    with closing(redshift_connection()) as target:
        claim_bootstrap(target, schema, BOOTSTRAPPING_RUN, lambda state: True)
    return schema


def plan_of_the_waiting_run(schema: str, run_is_active):
    """The backfill run's plan_run, against the real target and source."""
    from tracking_sync.connections import redshift_connection, source_connection

    plan = plan_run(
        DEFAULT_PARAMS | {"target_schema": schema},
        datetime(2025, 3, 3, tzinfo=UTC),
        datetime(2025, 3, 4, tzinfo=UTC),
    )
    with closing(source_connection()) as source, closing(redshift_connection()) as target:
        return planning.plan_against_state(
            plan,
            Settings.from_env(),
            source=source,
            target=target,
            run_type="backfill",
            run_id=WAITING_RUN,
            run_is_active=run_is_active,
        )


def finish_the_bootstrap(stack, schema: str) -> int:
    """What the bootstrapping run leaves when it has published: its slot, and the sync state
    with the LSN it applied (the publish's statements, tracking_sync.load.sync_state)."""
    from tracking_sync.connections import redshift_connection

    with closing(psycopg2.connect(stack.source_dsn)) as source:
        lsn = create_slot(source, slot_name(schema)).consistent_lsn
    with closing(redshift_connection()) as target:
        cursor = target.cursor()
        cursor.paramstyle = "pyformat"
        write_sync_state(
            cursor,
            schema,
            capture="logical",
            slot=slot_name(schema),
            applied_lsn=lsn,
            applied_at=datetime(2025, 3, 8, tzinfo=UTC),
            bootstrapped_by=BOOTSTRAPPING_RUN,
            run_id=BOOTSTRAPPING_RUN,
        )
        target.commit()
    return lsn


def test_a_run_waits_in_plan_run_for_a_bootstrap_then_moves_its_interval(stack, claimed, caplog):
    schema = claimed
    finished = threading.Timer(BOOTSTRAP_SECONDS, finish_the_bootstrap, (stack, schema))
    started = time.monotonic()
    finished.start()
    try:
        with caplog.at_level(logging.INFO, logger=planning.__name__):
            plan, _ = plan_of_the_waiting_run(schema, run_is_active=lambda run_id: True)
    finally:
        finished.join()
    assert time.monotonic() - started >= BOOTSTRAP_SECONDS, "it waited for the bootstrap"
    assert (plan.action_load, plan.bootstrap) == ("interval", False), "then moved its own interval"
    (line,) = [r.getMessage() for r in caplog.records if "is loading" in r.getMessage()]
    assert line.startswith(f"run {BOOTSTRAPPING_RUN} is loading {schema} whole (its bootstrap)"), line


def test_a_bootstrap_longer_than_a_try_is_retried_saying_how_long_it_waited(claimed, monkeypatch):
    monkeypatch.setattr(planning, "BOOTSTRAP_WAIT_SECONDS", 0.5)
    started = time.monotonic()
    with pytest.raises(
        BootstrapInProgress, match=r"This try waited \d+ s for it; the task is retried and waits again"
    ) as raised:
        plan_of_the_waiting_run(claimed, run_is_active=lambda run_id: True)
    assert 0.5 <= time.monotonic() - started < 30
    decision = RETRY_POLICY.evaluate(raised.value, try_number=1, max_tries=3)
    assert decision.action.value == "retry"


def test_a_bootstrap_whose_run_ended_unpublished_is_taken_over(claimed, target_schema_of_test):
    """The bootstrapping run ended (failed, deleted) without publishing: the waiting run stops
    waiting and bootstraps the target itself."""
    ended_at = time.monotonic() + BOOTSTRAP_SECONDS
    plan, _ = plan_of_the_waiting_run(claimed, run_is_active=lambda run_id: time.monotonic() < ended_at)
    assert time.monotonic() >= ended_at
    assert (plan.action_load, plan.bootstrap) == ("full", True)
    from tracking_sync.connections import redshift_connection

    with closing(redshift_connection()) as target:
        assert read_sync_state(target, claimed).bootstrapped_by == WAITING_RUN
