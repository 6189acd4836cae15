"""What an export saw: PostgreSQL's snapshot and the WAL position read with it.

A reload of action (a full refresh's partition, a backfill's interval) records it in the
target (tracking_sync.load.sync_state): with logical capture, a captured change whose
transaction the snapshot saw is already in the reloaded rows, and is not applied again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Snapshot:
    """What an export saw: PostgreSQL's snapshot (pg_current_snapshot) and the LSN read with it."""

    xmin: int
    xmax: int
    xip: tuple[int, ...]
    lsn: int

    @classmethod
    def parse(cls, text: str, lsn: int) -> Snapshot:
        """'xmin:xmax:xip,xip' as pg_snapshot prints it."""
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), tuple(int(x) for x in xip.split(",") if x), lsn)

    def to_xcom(self) -> dict[str, Any]:
        return {"xmin": self.xmin, "xmax": self.xmax, "xip": list(self.xip), "lsn": self.lsn}

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> Snapshot:
        return cls(data["xmin"], data["xmax"], tuple(data["xip"]), data["lsn"])
