"""Planning a run against what the source and the target hold: how action moves this run.

tracking_sync.core.plan checks the params and the interval; this decides, from the target's
sync state (tracking_sync.load.sync_state) and the source's replication slot
(tracking_sync.capture), whether the run

- bootstraps: the target has no sync state yet (a new deployment, a new target schema, a
  switch of TRACKING_SYNC_CAPTURE): it loads action whole, consistently with the slot it
  creates first, whatever run it is (the first scheduled run after unpausing, a backfill);
- reloads everything: mode=full_refresh (a lost or dropped slot is recreated first);
- applies the changes captured since the last applied LSN up to one fixed now, and kept
  for the run in the target so that a rerun reads the same batch: a scheduled run (or
  mode=changes) with logical capture;
- reloads its interval by action_time: a backfill or a manual run, and every run with
  interval capture.

It also checks what capture needs on the source (tracking_sync.capture.preflight) and
reports the slot's retained WAL, so a run that cannot capture fails here, in seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracking_sync.capture.errors import SlotLost, SlotMissing
from tracking_sync.capture.preflight import check_source
from tracking_sync.capture.slot import (
    create_slot,
    current_lsn,
    drop_slot,
    ensure_publication,
    slot_name,
    slot_status,
)
from tracking_sync.core.errors import BootstrapInProgress, InvalidParams
from tracking_sync.core.lsn import format_lsn
from tracking_sync.core.plan import RunPlan
from tracking_sync.core.repairs import full_refresh_command
from tracking_sync.core.settings import Settings
from tracking_sync.load.sync_state import (
    BOOTSTRAPPING,
    SyncState,
    claim_bootstrap,
    planned_batch_upto,
    read_sync_state,
)

log = logging.getLogger(__name__)

SCHEDULED = "scheduled"
MIB = 1024 * 1024
# A run that plans while another run bootstraps the target waits for it inside its plan_run,
# reading the target's sync state every BOOTSTRAP_POLL_SECONDS, up to BOOTSTRAP_WAIT_SECONDS
# a try (below the tasks' 2 h execution_timeout); then it raises BootstrapInProgress, which
# is retried (tracking_sync.oncall.failures) and waits again. A bootstrap of a large table
# takes far longer than the retries' delays alone.
BOOTSTRAP_POLL_SECONDS = 10.0
BOOTSTRAP_WAIT_SECONDS = 90 * 60.0


@dataclass(frozen=True)
class SlotReport:
    """What on-call reads of the slot each run: the WAL it keeps on the source."""

    slot: str
    retained_bytes: int | None
    wal_status: str
    safe_wal_bytes: int | None
    last_applied_at: datetime | None
    window_end: datetime

    def line(self) -> str:
        retained = "unknown" if self.retained_bytes is None else f"{self.retained_bytes / MIB:.1f} MiB"
        age = (
            "never applied"
            if self.last_applied_at is None
            else f"last applied for an interval ending {self.last_applied_at.isoformat()} "
            f"({(self.window_end - self.last_applied_at).total_seconds() / 3600:.1f} h before this run's)"
        )
        headroom = (
            ""
            if self.safe_wal_bytes is None
            else f", {self.safe_wal_bytes / MIB:.0f} MiB before invalidation"
        )
        return f"slot {self.slot}: retains {retained} of WAL ({self.wal_status}{headroom}); {age}"

    def warning(self, max_retained_bytes: int) -> str | None:
        """The line on-call hears when the slot keeps more WAL than the deployment allows."""
        if self.retained_bytes is None or self.retained_bytes <= max_retained_bytes:
            return None
        return (
            f"TRACKING_SYNC SLOT {self.line()}: over TRACKING_SYNC_SLOT_MAX_RETAINED_MB "
            f"({max_retained_bytes // MIB} MiB). A paused DAG or failing runs keep the source's WAL; "
            "max_slot_wal_keep_size bounds it (docs/runbook.md, The slot and the source's WAL)"
        )


def plan_against_state(
    plan: RunPlan,
    settings: Settings,
    *,
    source: Any,
    target: Any,
    run_type: str | None,
    run_id: str,
    run_is_active: Callable[[str], bool] = lambda run_id: True,
) -> tuple[RunPlan, SlotReport | None]:
    """Decide how action moves this run; create the slot first when the run loads action whole
    with logical capture. `source` is a psycopg2 connection to the source, `target` a DB-API
    connection to Redshift; `run_is_active(run_id)` says whether another run of the DAG is
    still queued or running (one whose bootstrap claim this run would otherwise wait for)."""
    state = wait_for_bootstrap(
        lambda: _claim_if_bootstrap(
            plan, settings, read_sync_state(target, plan.target_schema), target, run_id, run_is_active
        )
    )
    if settings.capture == "interval":
        return _plan_interval_capture(plan, state), None
    slot = slot_name(plan.target_schema)
    bootstrap = state.capture != "logical" or state.slot != slot or state.applied_lsn is None
    if bootstrap or plan.full_refresh:
        return _plan_full_load(plan, source, slot, bootstrap, state), None
    status = slot_status(source, slot)
    repair = full_refresh_command(plan.target_schema)
    if status is None:
        raise SlotMissing(
            f"replication slot {slot} is gone from the source (dropped by hand, or by a failover to "
            "a replica that does not carry it): the changes since the last run cannot be read, and "
            f"the target cannot be kept in step. Repair: {repair} (it recreates the slot and "
            "reloads action whole); nothing has moved yet"
        )
    if status.is_lost:
        raise SlotLost(
            f"replication slot {slot} was invalidated (wal_status = lost): the source removed WAL it "
            f"still needed, because the slot fell more than max_slot_wal_keep_size behind (the DAG was "
            f"paused, or runs failed, for too long). The changes it held are gone. Repair: {repair} "
            "(it drops the lost slot, creates a new one and reloads action whole); then raise "
            "max_slot_wal_keep_size or keep the DAG running. Nothing has moved yet"
        )
    check_source(source, slot=slot).raise_for_problems()
    report = SlotReport(
        slot=slot,
        retained_bytes=status.retained_wal_bytes,
        wal_status=status.wal_status,
        safe_wal_bytes=status.safe_wal_size,
        last_applied_at=state.applied_at,
        window_end=plan.window_end,
    )
    if plan.mode == "changes" or (plan.mode == "incremental" and run_type == SCHEDULED):
        upto = planned_batch_upto(target, plan.target_schema, run_id, slot, lambda: current_lsn(source))
        if upto < state.applied_lsn:
            upto = state.applied_lsn  # planned before an earlier run applied past it: nothing left
        return plan.with_load("changes", capture="logical", slot=slot, upto_lsn=upto), report
    return plan.with_load("interval", capture="logical", slot=slot), report


def wait_for_bootstrap(claim: Callable[[], SyncState]) -> SyncState:
    """`claim()` (the sync state, settled or claimed by this run) once no other active run is
    bootstrapping the target: while one is (BootstrapInProgress), poll again every
    BOOTSTRAP_POLL_SECONDS, up to BOOTSTRAP_WAIT_SECONDS; then raise BootstrapInProgress
    saying how long this try waited (retried)."""
    started = next_line = time.monotonic()
    while True:
        try:
            return claim()
        except BootstrapInProgress as waiting:
            now = time.monotonic()
            waited = now - started
            if waited >= BOOTSTRAP_WAIT_SECONDS:
                raise BootstrapInProgress(
                    f"{waiting}. This try waited {_minutes(waited)} for it; the task is retried and "
                    "waits again. If its last try gives up too, clear plan_run of this run once that "
                    "run has finished; nothing has moved yet"
                ) from None
            if now >= next_line:  # one line a minute
                log.info("%s (waited %s so far)", waiting, _minutes(waited))
                next_line = now + 60
            time.sleep(min(BOOTSTRAP_POLL_SECONDS, BOOTSTRAP_WAIT_SECONDS - waited))


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _claim_if_bootstrap(
    plan: RunPlan,
    settings: Settings,
    state: SyncState | None,
    target: Any,
    run_id: str,
    run_is_active: Callable[[str], bool],
) -> SyncState:
    """A target without the deployment's sync state is bootstrapped by ONE run: the first to
    claim it. Another run that plans meanwhile (a backfill started beside the first nightly)
    waits, retried, and then moves its own interval; a claim of a run that ended without
    publishing is taken over."""
    slot = slot_name(plan.target_schema) if settings.capture == "logical" else None

    def settled(found: SyncState | None) -> bool:
        return (
            found is not None
            and found.capture == settings.capture
            and found.slot == slot
            and (settings.capture == "interval" or found.applied_lsn is not None)
        )

    def should_claim(found: SyncState | None) -> bool:
        if settled(found):
            return False
        claimant = found.bootstrapped_by if found is not None and found.capture == BOOTSTRAPPING else None
        if claimant is not None and claimant != run_id and run_is_active(claimant):
            raise BootstrapInProgress(
                f"run {claimant} is loading {plan.target_schema} whole (its bootstrap): this run "
                f"waits for it (reading the target's sync state every {BOOTSTRAP_POLL_SECONDS:.0f} s, "
                f"up to {BOOTSTRAP_WAIT_SECONDS / 60:.0f} min a try) and then moves its own interval"
            )
        return True

    if settled(state):
        return state
    # Decided again under the sync state's lock: another run may have claimed it meanwhile.
    return claim_bootstrap(target, plan.target_schema, run_id, should_claim)


def _plan_interval_capture(plan: RunPlan, state: SyncState | None) -> RunPlan:
    if plan.mode == "changes":
        raise InvalidParams(
            "mode=changes applies the changes captured from the source's WAL, and this deployment "
            "reloads intervals (TRACKING_SYNC_CAPTURE=interval): trigger mode=incremental, or set "
            "TRACKING_SYNC_CAPTURE=logical (docs/configuration.md)"
        )
    bootstrap = state is None or state.capture != "interval"
    if bootstrap or plan.full_refresh:
        if bootstrap:
            log.info(
                "%s has no sync state for interval capture yet: this run loads action whole",
                plan.target_schema,
            )
        return plan.with_load("full", capture="interval", bootstrap=bootstrap)
    return plan.with_load("interval", capture="interval")


def _plan_full_load(
    plan: RunPlan, source: Any, slot: str, bootstrap: bool, state: SyncState | None
) -> RunPlan:
    """A whole load of action with logical capture: the slot exists (a lost one is replaced)
    before the export takes its snapshot, so every change after it reaches the target."""
    status = slot_status(source, slot)
    if status is not None and status.is_lost:
        # A lost slot holds nothing usable: start the capture anew with this load. A slot that
        # is not lost is kept: this load's applied LSN and snapshot make it consistent.
        drop_slot(source, slot)
        log.warning("dropped replication slot %s (%s) to start the capture anew", slot, status.wal_status)
        status = None
    ensure_publication(source)  # what a bootstrap creates is not a problem to report
    check_source(source, slot=slot if status is not None else None).raise_for_problems()
    created = create_slot(source, slot)
    # Every transaction committed before now is in the export, whose snapshot is taken later:
    # the target applies from here on (a change between here and the snapshot is set aside by
    # the export's recorded snapshot, tracking_sync.load.sync_state). A TRUNCATE before it, say,
    # is in the reload and does not stop the next capture.
    start = max(current_lsn(source), created.consistent_lsn)
    if bootstrap:
        log.info(
            "%s has no applied LSN of slot %s: this run bootstraps it, loading action whole; the "
            "changes committed from %s on follow in the next runs",
            plan.target_schema,
            slot,
            format_lsn(start),
        )
    return plan.with_load("full", capture="logical", bootstrap=bootstrap, slot=slot, start_lsn=start)
