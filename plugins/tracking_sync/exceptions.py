"""Every error the pipeline raises on purpose, in one place.

Each says what went wrong and what to do about it.
"""

from __future__ import annotations


class TrackingSyncError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class InvalidParams(TrackingSyncError, ValueError):
    """A trigger param is not one of the allowed values. Raised before any data moves."""


class MissingSetting(TrackingSyncError):
    """A required setting (environment variable) is not set."""


class StagingPartMissing(TrackingSyncError):
    """An exported part is not on the staging dir when the upload task looks for it."""


class LoadFailed(TrackingSyncError):
    """COPY into Redshift failed; carries the rows of stl_load_errors that say where."""


class ParityCheckError(TrackingSyncError):
    """A parity check file is malformed or cannot be compared (says which file and how to fix it)."""


class NotifierMisconfigured(TrackingSyncError):
    """TRACKING_SYNC_NOTIFIER does not name a usable notifier class."""
