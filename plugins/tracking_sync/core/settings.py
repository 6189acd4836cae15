"""Settings of the pipeline, read at run time (never when the DAG file is parsed).

Each is an environment variable, or the same name in airflow.cfg's [tracking_sync] section
(`setting`, the one reader).

Connection ids are fixed names (tracking_sync.core.names). Everything that differs between
deployments comes from the environment:

    TRACKING_SYNC_BUCKET        S3 bucket for the staged parts (required)
    TRACKING_SYNC_PREFIX        key prefix inside it (default "tracking")
    TRACKING_SYNC_STAGING_URL   where the export leaves its parts for the upload: file:///folder
                                (one machine) or s3://bucket/prefix (workers that share no disk);
                                see tracking_sync.core.scratch
    TRACKING_SYNC_STAGING_DIR   the older spelling of a file:// staging URL (a local folder,
                                default <tmp>/tracking_sync); ignored when the URL is set
    TRACKING_SYNC_PARTITIONS    slices a full refresh of action is exported in, in parallel,
                                when the run's `partitions` param is empty (default 1, at most
                                params.MAX_PARTITIONS)
    TRACKING_SYNC_PART_MB       uncompressed size at which a part is closed (default 512)
    TRACKING_SYNC_RETENTION_DAYS  days an interval's files stay in S3 after the interval
                                (default 14); a later run that runs alone removes older ones
    TRACKING_SYNC_CAPTURE       logical (default: nightly runs apply the changes read from the
                                source's WAL through a replication slot) or interval (they
                                reload their interval by action_time)
    TRACKING_SYNC_SLOT_MAX_RETAINED_MB  source WAL the slot may retain before each run warns
                                on-call (default 10240)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tracking_sync.core.errors import MissingSetting
from tracking_sync.core.params import MAX_PARTITIONS
from tracking_sync.core.scratch import ScratchArea

MIB = 1024 * 1024
# 512 MiB of CSV compresses to ~100 MiB with zstd: inside Redshift's 1 MB-1 GB sweet spot,
# and a nightly slice of a few million rows still splits into several parts to load in
# parallel across slices.
DEFAULT_PART_MB = 512
# Staged files of an interval stay this long after the interval (to reload or inspect a
# recent day without a new export), then the upload of a later interval removes them.
DEFAULT_RETENTION_DAYS = 14
CAPTURES = ("logical", "interval")
# A nightly capture of a busy tracking database retains a day of WAL; ten GiB is many days.
DEFAULT_SLOT_MAX_RETAINED_MB = 10240


CONFIG_SECTION = "tracking_sync"


def setting(env_name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """One setting: the environment variable TRACKING_SYNC_<NAME>, else <name> in airflow.cfg's
    [tracking_sync] section (or AIRFLOW__TRACKING_SYNC__<NAME>). With `environ` given (tests),
    that mapping alone. The one reader of the pipeline's settings."""
    value = (os.environ if environ is None else environ).get(env_name)
    if value and value.strip():
        return value.strip()
    if environ is not None:
        return None
    try:
        from airflow.sdk import conf
    except ImportError:
        return None
    key = env_name.removeprefix("TRACKING_SYNC_").lower()
    value = conf.get(CONFIG_SECTION, key, fallback=None)
    return value.strip() if value and value.strip() else None


class _Environment:
    """`setting` with a default, shaped like the environ.get the parsing below was written for."""

    def __init__(self, environ: Mapping[str, str] | None) -> None:
        self.environ = environ

    def get(self, name: str, default: str | None = None) -> str | None:
        value = setting(name, self.environ)
        return default if value is None else value


@dataclass(frozen=True)
class Settings:
    bucket: str
    prefix: str = "tracking"
    scratch_dir: Path = Path(tempfile.gettempdir()) / "tracking_sync"
    part_bytes: int = DEFAULT_PART_MB * MIB
    retention_days: int = DEFAULT_RETENTION_DAYS
    # TRACKING_SYNC_STAGING_URL; empty: the folder scratch_dir (file://)
    scratch_url: str = ""
    partitions: int = 1
    # TRACKING_SYNC_CAPTURE: how nightly runs find what changed (docs/configuration.md)
    capture: str = "logical"
    # TRACKING_SYNC_SLOT_MAX_RETAINED_MB: retained WAL past which each run warns on-call
    slot_max_retained_bytes: int = DEFAULT_SLOT_MAX_RETAINED_MB * MIB

    @property
    def scratch(self) -> ScratchArea:
        """Where the export leaves its parts for the upload (tracking_sync.core.scratch)."""
        if self.scratch_url:
            return ScratchArea.parse(self.scratch_url)
        return ScratchArea.parse(self.scratch_dir.absolute().as_uri())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Environment(environ)
        bucket = env.get("TRACKING_SYNC_BUCKET", "").strip()
        if not bucket:
            raise MissingSetting(
                "TRACKING_SYNC_BUCKET is not set: set it to the S3 bucket where parts are "
                "staged for COPY (the Redshift cluster's IAM role must be able to read it)"
            )
        part_mb = env.get("TRACKING_SYNC_PART_MB", str(DEFAULT_PART_MB))
        try:
            part_bytes = int(float(part_mb) * MIB)
        except ValueError:
            raise MissingSetting(
                f"TRACKING_SYNC_PART_MB={part_mb!r} is not a number of MiB (e.g. 512)"
            ) from None
        if part_bytes <= 0:
            raise MissingSetting(f"TRACKING_SYNC_PART_MB={part_mb!r} must be positive")
        retention = env.get("TRACKING_SYNC_RETENTION_DAYS", str(DEFAULT_RETENTION_DAYS)).strip()
        if not retention.isdigit() or int(retention) < 1:
            raise MissingSetting(
                f"TRACKING_SYNC_RETENTION_DAYS={retention!r} is not a whole number of days >= 1 "
                f"(default {DEFAULT_RETENTION_DAYS}): how long an interval's files stay in S3"
            )
        scratch_url = env.get("TRACKING_SYNC_STAGING_URL", "").strip()
        if scratch_url:
            ScratchArea.parse(scratch_url)  # a bad URL fails here, saying what is allowed
        partitions = env.get("TRACKING_SYNC_PARTITIONS", "1").strip()
        if not partitions.isdigit() or not 1 <= int(partitions) <= MAX_PARTITIONS:
            raise MissingSetting(
                f"TRACKING_SYNC_PARTITIONS={partitions!r} is not a whole number from 1 to "
                f"{MAX_PARTITIONS}: the slices a full refresh of action is exported in, in "
                "parallel (1 = one slice; docs/scaling.md)"
            )
        capture = env.get("TRACKING_SYNC_CAPTURE", "logical").strip().lower()
        if capture not in CAPTURES:
            raise MissingSetting(
                f"TRACKING_SYNC_CAPTURE={capture!r} is not one of {', '.join(CAPTURES)}: logical "
                "reads every change from the source's WAL through a replication slot (needs "
                "wal_level=logical); interval reloads each nightly interval by action_time "
                "(docs/configuration.md)"
            )
        max_retained = env.get(
            "TRACKING_SYNC_SLOT_MAX_RETAINED_MB", str(DEFAULT_SLOT_MAX_RETAINED_MB)
        ).strip()
        if not max_retained.isdigit() or int(max_retained) < 1:
            raise MissingSetting(
                f"TRACKING_SYNC_SLOT_MAX_RETAINED_MB={max_retained!r} is not a whole number of MiB "
                f">= 1 (default {DEFAULT_SLOT_MAX_RETAINED_MB}): the source WAL the slot may keep "
                "before each run warns on-call"
            )
        return cls(
            bucket=bucket,
            capture=capture,
            slot_max_retained_bytes=int(max_retained) * MIB,
            prefix=env.get("TRACKING_SYNC_PREFIX", cls.prefix).strip("/") or cls.prefix,
            scratch_dir=Path(env.get("TRACKING_SYNC_STAGING_DIR") or cls.scratch_dir),
            part_bytes=part_bytes,
            retention_days=int(retention),
            scratch_url=scratch_url,
            partitions=int(partitions),
        )
