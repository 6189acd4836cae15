"""The DAG's trigger params, checked before any data moves, and the slice a run moves."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tracking_sync.exceptions import InvalidParams

MODES = ("incremental", "full_refresh")
VALIDATIONS = ("scoped", "full")
DEFAULT_TARGET_SCHEMA = "tracking"

# A plain Redshift identifier: it is written into SQL unquoted (Jinja), so only these pass.
# Lower case only, because Redshift folds unquoted names to lower case anyway.
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_MAX_IDENTIFIER_BYTES = 127
_RESERVED_SCHEMAS = ("information_schema", "public")


@dataclass(frozen=True)
class RunParams:
    mode: str
    target_schema: str
    validation: str

    @property
    def is_full_refresh(self) -> bool:
        return self.mode == "full_refresh"


def validate_params(params: Mapping[str, Any]) -> RunParams:
    """Check the trigger params; raise InvalidParams listing every problem and what is allowed."""
    problems = []
    mode = params.get("mode", "incremental")
    if mode not in MODES:
        problems.append(f"mode={mode!r} is not one of {', '.join(MODES)}")
    schema = params.get("target_schema", DEFAULT_TARGET_SCHEMA)
    if not isinstance(schema, str) or not _IDENTIFIER.fullmatch(schema):
        problems.append(
            f"target_schema={schema!r} is not a plain identifier: use lower-case letters, "
            "digits and _, starting with a letter or _ (e.g. tracking)"
        )
    elif len(schema.encode()) > _MAX_IDENTIFIER_BYTES:
        problems.append(f"target_schema={schema!r} is longer than 127 bytes")
    elif schema in _RESERVED_SCHEMAS or schema.startswith("pg_"):
        problems.append(f"target_schema={schema!r} is a system or shared schema; pick a schema of its own")
    validation = params.get("validation", "scoped")
    if validation not in VALIDATIONS:
        problems.append(f"validation={validation!r} is not one of {', '.join(VALIDATIONS)}")
    if problems:
        raise InvalidParams("invalid trigger params: " + "; ".join(problems))
    return RunParams(mode=mode, target_schema=schema, validation=validation)


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
                    "triggered without a logical date): trigger it with one (UI: Trigger, set "
                    "the logical date; CLI: airflow dags trigger postgres_to_redshift "
                    "--logical-date 2025-03-02T00:00:00+00:00), run a backfill, or use "
                    "mode=full_refresh"
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


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise InvalidParams(f"{moment} has no time zone: data interval bounds must be aware")
    return moment.astimezone(UTC).replace(tzinfo=None)


def _stamp(moment: datetime | None) -> str:
    assert moment is not None
    return _naive_utc(moment).strftime("%Y%m%dt%H%M%S")


def plan_run(params: Mapping[str, Any], start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """Validate a run's params and interval; return the plan every later task follows (XCom)."""
    run_params = validate_params(params)
    run_slice = RunSlice.for_run(run_params, start, end)
    return {
        "mode": run_params.mode,
        "target_schema": run_params.target_schema,
        "validation": run_params.validation,
        "full_refresh": run_slice.full_refresh,
        "start": None if run_slice.start is None else run_slice.start.isoformat(),
        "end": None if run_slice.end is None else run_slice.end.isoformat(),
        "slice_label": run_slice.label,
    }


def plan_run_task(params: Mapping[str, Any], start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """plan_run for the Airflow task: bad params fail the task at once, without retries
    (a retry would meet the same params)."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return plan_run(params, start, end)
    except InvalidParams as error:
        raise AirflowFailException(str(error)) from error


def slice_from_plan(plan: Mapping[str, Any]) -> RunSlice:
    if plan["full_refresh"]:
        return RunSlice(full_refresh=True)
    return RunSlice(
        full_refresh=False,
        start=datetime.fromisoformat(plan["start"]),
        end=datetime.fromisoformat(plan["end"]),
    )
