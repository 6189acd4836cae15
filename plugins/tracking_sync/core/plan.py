"""The run plan: what one run moves and checks, decided once, before any data moves.

`plan_run` checks the trigger params and the data interval and returns a `RunPlan`;
every later task takes that plan (as XCom) and nothing else from the run's context,
so no task re-reads or re-checks the params:

    plan = plan_run(params, conf, data_interval_start, data_interval_end, run_after)
    plan.run_slice        the rows to move: [start, end) of action, or everything
    plan.target_schema    where to load (a checked identifier)
    plan.staging_table    the interval's staging table for action
    plan.scope            the validation to run: scoped or full
    plan.window_start/end what validation compares (everything before window_end)
    plan.partitions       how many slices a full refresh of action is exported in (1 otherwise;
                          their id ranges: tracking_sync.extract.partitions)
    plan.action_load      how action moves: `full` (every row), `interval` (the interval's
                          rows by action_time) or `changes` (the changes captured from the
                          source's WAL up to plan.upto_lsn, whatever day they touch)
    plan.capture          the deployment's capture: `logical` (a replication slot) or `interval`

The decision between them needs the source's slot and the target's sync state: that is
tracking_sync.planning, which calls plan_run and then `with_load`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tracking_sync.core.errors import InvalidParams
from tracking_sync.core.params import MAX_PARTITIONS, RunParams, validate_params
from tracking_sync.core.repairs import backfill_command

ACTION_LOADS = ("full", "interval", "changes")


@dataclass(frozen=True)
class RunSlice:
    """What one run moves: the rows of [start, end) for incremental runs, everything otherwise.

    Its label names the run's S3 prefix and staging table, so a rerun of the same
    interval reuses (and overwrites) them instead of adding new ones.
    """

    full_refresh: bool
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if not self.full_refresh:
            if self.start is None or self.end is None:
                raise InvalidParams(
                    "an incremental run needs a data interval, and this run has none (it was "
                    "triggered without a logical date): trigger it with one (UI: Trigger, keep "
                    "the Logical Date: a manual run with logical date D moves the day before D), "
                    f"run a backfill of the day (CLI: {backfill_command('YYYY-MM-DD', 'YYYY-MM-DD')}), "
                    "or use mode=full_refresh"
                )
            if not self.start < self.end:
                raise InvalidParams(
                    f"the data interval [{self.start}, {self.end}) is empty: an incremental "
                    "run needs a schedule with real data intervals (CronDataIntervalTimetable)"
                )

    @classmethod
    def for_run(cls, run_params: RunParams, start: datetime | None, end: datetime | None) -> RunSlice:
        if run_params.is_full_refresh:
            return cls(full_refresh=True)
        return cls(full_refresh=False, start=start, end=end)

    @property
    def label(self) -> str:
        if self.full_refresh:
            return "full_refresh"
        return f"{_stamp(self.start)}_{_stamp(self.end)}"

    @property
    def naive_utc_bounds(self) -> tuple[datetime, datetime]:
        """The bounds as the source stores action_time: timestamp without time zone, in UTC."""
        assert self.start is not None and self.end is not None
        return _naive_utc(self.start), _naive_utc(self.end)


@dataclass(frozen=True)
class RunPlan:
    """Everything a run does, decided by plan_run; the one input of every later task."""

    mode: str
    target_schema: str
    validation: str  # what the trigger asked for; `scope` is what validate runs
    run_slice: RunSlice
    window_start: datetime
    window_end: datetime
    partitions: int = 1
    capture: str = "interval"  # TRACKING_SYNC_CAPTURE: logical | interval
    action_load: str = ""  # full | interval | changes; "" = from run_slice (full or interval)
    bootstrap: bool = False  # the target has no sync state yet: this run loads it whole
    slot: str | None = None  # the capture's replication slot (logical capture)
    start_lsn: int | None = None  # full load: where the slot starts (applied after a bootstrap)
    upto_lsn: int | None = None  # changes: every change committed before it is applied

    def __post_init__(self) -> None:
        if not self.action_load:
            object.__setattr__(self, "action_load", "full" if self.run_slice.full_refresh else "interval")
        if self.action_load not in ACTION_LOADS:
            raise InvalidParams(f"action_load={self.action_load!r} is not one of {', '.join(ACTION_LOADS)}")

    @property
    def full_refresh(self) -> bool:
        return self.run_slice.full_refresh

    @property
    def applies_changes(self) -> bool:
        return self.action_load == "changes"

    def with_load(self, action_load: str, **decided: Any) -> RunPlan:
        """The plan with how action moves decided (tracking_sync.planning): a bootstrap or a
        full refresh becomes a whole-table load, cut into the plan's partitions."""
        if action_load == "full" and not self.full_refresh:
            decided.setdefault("partitions", self.partitions)
            return replace(
                self,
                run_slice=RunSlice(full_refresh=True),
                window_start=self.window_end,
                action_load="full",
                **decided,
            )
        return replace(self, action_load=action_load, **decided)

    @property
    def scope(self) -> str:
        """`full` when asked for, and after a full refresh (it reloaded everything);
        `scoped` otherwise: the users active in the interval, each with their whole
        history, so the cost grows with the interval's users, not the table."""
        if self.validation == "full" or self.full_refresh:
            return "full"
        return "changes" if self.applies_changes else "scoped"

    @property
    def slice_label(self) -> str:
        return self.run_slice.label

    @property
    def staging_table(self) -> str:
        """The interval's staging table for action, e.g. action_staging_20250301t000000_…, or
        its table of captured changes, action_changes_20250301t000000_…"""
        if self.applies_changes:
            return f"action_changes_{self.slice_label}"
        return f"action_staging_{self.slice_label}"

    @property
    def action_files(self) -> str:
        """The name action's files travel under (S3 prefix, scratch area): the changes of a
        capture run never share a prefix with a reload of the same interval."""
        return "action_changes" if self.applies_changes else "action"

    def to_xcom(self) -> dict[str, Any]:
        """Plain JSON values; plan_run also pushes each key as its own XCom (the DAG's
        planned["target_schema"])."""
        return {
            "mode": self.mode,
            "target_schema": self.target_schema,
            "validation": self.validation,
            "scope": self.scope,
            "full_refresh": self.full_refresh,
            "start": _iso(self.run_slice.start),
            "end": _iso(self.run_slice.end),
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "slice_label": self.slice_label,
            "staging_table": self.staging_table,
            "partitions": self.partitions,
            "capture": self.capture,
            "action_load": self.action_load,
            "action_files": self.action_files,
            "bootstrap": self.bootstrap,
            "slot": self.slot,
            "start_lsn": self.start_lsn,
            "upto_lsn": self.upto_lsn,
        }

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> RunPlan:
        return cls(
            mode=data["mode"],
            target_schema=data["target_schema"],
            validation=data["validation"],
            run_slice=RunSlice(
                full_refresh=data["full_refresh"],
                start=_datetime(data["start"]),
                end=_datetime(data["end"]),
            ),
            window_start=datetime.fromisoformat(data["window_start"]),
            window_end=datetime.fromisoformat(data["window_end"]),
            partitions=data.get("partitions", 1),
            capture=data.get("capture", "interval"),
            action_load=data.get("action_load", ""),
            bootstrap=data.get("bootstrap", False),
            slot=data.get("slot"),
            start_lsn=data.get("start_lsn"),
            upto_lsn=data.get("upto_lsn"),
        )


def plan_run(
    params: Mapping[str, Any],
    start: datetime | None,
    end: datetime | None,
    *,
    conf: Mapping[str, Any] | None = None,
    run_after: datetime | None = None,
    default_partitions: int = 1,
) -> RunPlan:
    """Check a run's params, conf keys and interval; return the plan every later task follows.

    Validation compares everything before the interval's end. A manual run triggered
    without a logical date has no data interval (only a full refresh may): it is
    checked up to the moment it was triggered, `run_after`, which is fixed for the run
    (not the clock). A full refresh is cut into the `partitions` param's number of slices,
    or `default_partitions` (TRACKING_SYNC_PARTITIONS) when it is empty; a nightly run or a
    backfill interval is one slice.
    """
    run_params = validate_params(params, conf)
    try:
        run_slice = RunSlice.for_run(run_params, start, end)
    except InvalidParams as error:
        if run_after is None or start is not None:
            raise
        # The day that had ended when the run was triggered: a command that runs as printed.
        day = (run_after.astimezone(UTC) - timedelta(days=1)).date().isoformat()
        raise InvalidParams(str(error).replace("YYYY-MM-DD", day)) from None
    window_end = end or run_after
    if window_end is None:
        raise InvalidParams("the run has neither a data interval nor a trigger time to validate up to")
    partitions = run_params.partitions or default_partitions
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise InvalidParams(f"partitions={partitions!r} is not a whole number from 1 to {MAX_PARTITIONS}")
    return RunPlan(
        mode=run_params.mode,
        target_schema=run_params.target_schema,
        validation=run_params.validation,
        run_slice=run_slice,
        window_start=start or window_end,
        window_end=window_end,
        partitions=partitions if run_slice.full_refresh else 1,
    )


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise InvalidParams(f"{moment} has no time zone: data interval bounds must be aware")
    return moment.astimezone(UTC).replace(tzinfo=None)


def _stamp(moment: datetime | None) -> str:
    assert moment is not None
    return _naive_utc(moment).strftime("%Y%m%dt%H%M%S")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _datetime(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
