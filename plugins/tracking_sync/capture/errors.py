"""The errors change capture raises on purpose; each says what to do.

They are NeedsFix (tracking_sync.core.errors): a retry meets them again, so the task fails
at once through the on-call line. Kept here while the capture is wired in; they belong
beside the package's other errors in tracking_sync.core.errors.
"""

from __future__ import annotations

from tracking_sync.core.errors import NeedsFix

BOOTSTRAP = "run the DAG with mode=full_refresh (it creates the slot and reloads action)"


class SlotMissing(NeedsFix):
    """The capture's replication slot does not exist on the source."""


class SlotLost(NeedsFix):
    """The slot was invalidated (wal_status = 'lost'): the WAL it needed was removed."""


class SlotAheadOfTarget(NeedsFix):
    """The slot was advanced past the LSN the target applied: changes in between are gone."""


class TruncateCaptured(NeedsFix):
    """action was truncated on the source: only a full refresh makes the target match."""


class SourceTableChanged(NeedsFix):
    """The source table's columns no longer match tables.ACTION (a column added, dropped or
    retyped), or the slot's plugin is not pgoutput."""


class CaptureNotReady(NeedsFix):
    """The source is not set up for change capture (tracking_sync.capture.preflight)."""
