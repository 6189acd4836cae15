"""Retention: the load prefixes of intervals long past are removed from S3."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tracking_sync.core.s3 import delete_stale_objects
from tracking_sync.core.settings import Settings

_INTERVAL_LABEL = re.compile(r"\d{8}t\d{6}_(\d{8}t\d{6})")


def expire_old_intervals(s3_client: Any, settings: Settings, table: str, before: datetime) -> list[str]:
    """Remove the S3 prefixes of `table`'s intervals that ended before `before` minus the
    retention; return the labels removed. Keyed on the intervals' own dates (the labels),
    not on the clock, so a rerun removes the same; a full refresh's prefix is reused by
    the next one and stays."""
    horizon = before - timedelta(days=settings.retention_days)
    root = f"{settings.prefix}/{table}/"
    expired = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(
        Bucket=settings.bucket, Prefix=root, Delimiter="/"
    ):
        for common in page.get("CommonPrefixes", []):
            label = common["Prefix"][len(root) :].rstrip("/")
            end = interval_end_of(label)
            if end is not None and end <= horizon:
                delete_stale_objects(s3_client, settings.bucket, common["Prefix"], keep=set())
                expired.append(label)
    return expired


def interval_end_of(label: str) -> datetime | None:
    """The end of the interval a prefix label names (20250301t000000_20250302t000000), or None."""
    matched = _INTERVAL_LABEL.fullmatch(label)
    if not matched:
        return None
    return datetime.strptime(matched.group(1), "%Y%m%dt%H%M%S").replace(tzinfo=UTC)
