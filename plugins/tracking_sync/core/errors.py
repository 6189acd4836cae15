"""Every error the pipeline raises on purpose, in one place.

Each says what went wrong and what to do about it. A `NeedsFix` is a data or
configuration error that a retry would meet again (bad params, a rejected row, a part
gone that only the export makes, a full disk): the task fails at once, without retries,
through the same on-call line and notifier. A missing input a task can make again (the
staging table, the manifest) is not one: the task makes it, or retries. Anything else (a
refused connection, a timeout, throttling, a serializable isolation conflict) is
transient and retried with backoff.
"""

from __future__ import annotations


class TrackingSyncError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class NeedsFix(TrackingSyncError):
    """Retrying will not help: someone has to fix the data or the configuration first."""


class InvalidParams(NeedsFix, ValueError):
    """A trigger param is not one of the allowed values. Raised before any data moves."""


class MissingSetting(NeedsFix):
    """A required setting (environment variable) is not set or not usable."""


class StagingPartMissing(NeedsFix):
    """An exported part is not on the staging dir when the upload task looks for it."""


class StagingDiskFull(NeedsFix):
    """The staging folder ran out of space during the export; the partial part was removed."""


class LoadRejected(NeedsFix):
    """COPY into Redshift rejected the data or could not read the files (stl_load_errors says
    where); the target is unchanged."""


class TooManyMovedRows(NeedsFix):
    """More rows moved out of a rerun interval than a rerun carries; nothing was changed."""


class ParityCheckError(NeedsFix):
    """A parity check file is malformed or cannot be compared (says which file and how to fix it)."""


class NotifierMisconfigured(TrackingSyncError):
    """TRACKING_SYNC_NOTIFIER does not name a usable notifier class."""


class CaptureBatchStale(NeedsFix):
    """The target's applied LSN moved since the batch was captured: capture it again."""


class StagedFilesMissing(TrackingSyncError):
    """A COPY found no manifest or part where the upload put them: transient (retried)."""


class StagedFilesExpired(NeedsFix):
    """A part the COPY needs is gone from S3 (the retention sweep, a lifecycle rule) and the
    load cannot make it again: the message names the export task to clear instead."""


class ReloadSuperseded(NeedsFix):
    """A full refresh's publish run again after a later run applied changes: its older rows and
    applied LSN would undo them. Nothing was changed; a new full refresh is the repair."""


class StagingTableMissing(TrackingSyncError):
    """The COPY's staging table vanished between the load's (re)create and its COPY (another
    run's cleanup): not the data; retried, and the retry creates it again."""


class BootstrapInProgress(TrackingSyncError):
    """Another run is bootstrapping the target: this one waits (transient, retried)."""


class AccessRefused(NeedsFix):
    """The source, Redshift or S3 refused the pipeline's role a privilege or a login (SQLSTATE
    42501, class 28, S3 AccessDenied): no retry can grant it. Names the role, the object,
    the privilege and the grant that fixes it (tracking_sync.oncall.refusals)."""
