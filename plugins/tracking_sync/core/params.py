"""The DAG's trigger params, checked once, by plan_run, before any data moves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tracking_sync.core.errors import InvalidParams
from tracking_sync.core.names import IDENTIFIER, MAX_IDENTIFIER_BYTES

MODES = ("incremental", "full_refresh", "changes")
VALIDATIONS = ("scoped", "full")
DEFAULT_TARGET_SCHEMA = "tracking"
# A full refresh of action is cut into this many slices at most (tracking_sync.extract.partitions):
# each is a source session and a task slot; past ~64 the source's cores are the limit anyway.
MAX_PARTITIONS = 64
DEFAULT_PARAMS = {
    "mode": "incremental",
    "target_schema": DEFAULT_TARGET_SCHEMA,
    "validation": "scoped",
    # None: TRACKING_SYNC_PARTITIONS (default 1)
    "partitions": None,
}
PARAM_NAMES = tuple(DEFAULT_PARAMS)

_RESERVED_SCHEMAS = ("information_schema", "public")


@dataclass(frozen=True)
class RunParams:
    mode: str
    target_schema: str
    validation: str
    partitions: int | None = None  # None: the deployment's TRACKING_SYNC_PARTITIONS

    @property
    def is_full_refresh(self) -> bool:
        return self.mode == "full_refresh"


def unknown_conf_keys(conf: Mapping[str, Any] | None) -> list[str]:
    """Keys of a run's conf that are no param: a misspelled key would otherwise be ignored."""
    return sorted(key for key in (conf or {}) if key not in PARAM_NAMES)


def validate_params(params: Mapping[str, Any], conf: Mapping[str, Any] | None = None) -> RunParams:
    """Check the trigger params (and the run's conf keys); raise InvalidParams listing every
    problem and what is allowed."""
    problems = []
    unknown = unknown_conf_keys(conf)
    if unknown:
        problems.append(
            f"unknown conf key(s) {', '.join(map(repr, unknown))}: the allowed keys are "
            f"{', '.join(PARAM_NAMES)} (a misspelled key would be ignored, so it is refused)"
        )
    params = DEFAULT_PARAMS | dict(params)
    mode = params["mode"]
    if mode not in MODES:
        problems.append(f"mode={mode!r} is not one of {', '.join(MODES)}")
    schema = params["target_schema"]
    if not isinstance(schema, str) or not IDENTIFIER.fullmatch(schema):
        problems.append(
            f"target_schema={schema!r} is not a plain identifier: use lower-case letters, "
            "digits and _, starting with a letter or _ (e.g. tracking)"
        )
    elif len(schema.encode()) > MAX_IDENTIFIER_BYTES:
        problems.append(f"target_schema={schema!r} is longer than {MAX_IDENTIFIER_BYTES} bytes")
    elif schema in _RESERVED_SCHEMAS or schema.startswith("pg_"):
        problems.append(f"target_schema={schema!r} is a system or shared schema; pick a schema of its own")
    validation = params["validation"]
    if validation not in VALIDATIONS:
        problems.append(f"validation={validation!r} is not one of {', '.join(VALIDATIONS)}")
    partitions = params["partitions"]
    if partitions is not None and (
        isinstance(partitions, bool)
        or not isinstance(partitions, int)
        or not 1 <= partitions <= MAX_PARTITIONS
    ):
        problems.append(
            f"partitions={partitions!r} is not a whole number from 1 to {MAX_PARTITIONS} (or "
            "empty: TRACKING_SYNC_PARTITIONS): the slices a full refresh of action is exported in"
        )
    if problems:
        raise InvalidParams("invalid trigger params: " + "; ".join(problems))
    return RunParams(mode=mode, target_schema=schema, validation=validation, partitions=partitions)
