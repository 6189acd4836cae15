"""The note a validation carries when changes still pending in the capture's slot explain its
differences (tracking_sync.validate.pending decides; the report shows it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tracking_sync.validate.text import format_days


@dataclass
class PendingNote:
    """What the changes committed on the source after the target's applied LSN (still in the
    capture's slot) explain of a failed validation. `explained`: every difference; the
    report then passes. Counts are of the differing rows (ids), users and days explained."""

    slot: str
    after: str  # what the changes came after, as people read it: "this run's batch"
    after_lsn: str | None = None  # the target's applied LSN (None: unknown, nothing read)
    changes: dict[str, Any] = field(default_factory=dict)  # tracking_sync.capture.pending summary
    explained: bool = False
    rows: int = 0
    users: int = 0
    days: int = 0
    sample_ids: list[int] = field(default_factory=list)
    sample_users: list[int] = field(default_factory=list)
    sample_days: list[str] = field(default_factory=list)
    # checks each of whose named users, days, ids and counts a pending change explains
    pending_checks: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)  # what they do not explain, a line each

    @property
    def explains_some(self) -> bool:
        return bool(self.rows or self.users or self.days)

    def explained_part(self) -> str:
        """`6 rows / 0 users / 1 days (ids 20000198, ...; days 2025-03-02)`."""
        shown = []
        if self.sample_ids:
            shown.append(
                f"ids {', '.join(str(i) for i in self.sample_ids)}{_more(self.rows, self.sample_ids)}"
            )
        if self.sample_users:
            shown.append(
                f"users {', '.join(str(u) for u in self.sample_users)}{_more(self.users, self.sample_users)}"
            )
        if self.sample_days:
            shown.append(f"days {format_days(self.sample_days)}{_more(self.days, self.sample_days)}")
        detail = f" ({'; '.join(shown)})" if shown else ""
        return f"{self.rows} rows / {self.users} users / {self.days} days{detail}"

    def changes_part(self) -> str:
        """`slot s, after 0/1E26CC8: 40 inserts, 40 updates, 39 deletes of 119 ids`."""
        c = self.changes
        where = f"slot {self.slot}" + (f", after {self.after_lsn}" if self.after_lsn else "")
        if not c:
            return where
        return (
            f"{where}: {c.get('inserts', 0)} inserts, {c.get('updates', 0)} updates, "
            f"{c.get('deletes', 0)} deletes of {c.get('ids', 0)} ids"
        )

    def line(self) -> str:
        """The note as on-call reads it."""
        if self.explained:
            return (
                f"{self.explained_part()} differ only by changes committed after {self.after} "
                f"({self.changes_part()}); the next run applies and checks them"
            )
        head = f"changes committed after {self.after} ({self.changes_part()})"
        not_explained = "; ".join(self.unexplained)
        if not self.explains_some:
            return f"{head} explain no difference: {not_explained}"
        return (
            f"{head} explain {self.explained_part()}, pending for the next run; "
            f"NOT explained by them: {not_explained}"
        )


def _more(count: int, shown: Sequence[Any]) -> str:
    return f" and {count - len(shown)} more" if count > len(shown) else ""
