"""Errors that say what went wrong and what to do about it."""

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


class TooManyMovedRows(TrackingSyncError):
    """More rows moved out of a rerun interval than a rerun carries; nothing was changed."""
