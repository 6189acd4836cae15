"""Preflight: whether the source is set up for change capture, checked by reading only.

check_source() returns the problems (capture cannot work until they are fixed) and the
warnings (it works, with a risk); each is one line that names the setting, its value and
the fix on PostgreSQL, on Amazon RDS and on Aurora PostgreSQL. It changes nothing.

    wal_level                 logical (RDS/Aurora: rds.logical_replication = 1)
    the role                  superuser, REPLICATION, or member of rds_replication (RDS/Aurora)
    the publication           exists, publishes action: every column and row, inserts,
                              updates, deletes and truncates
    action's replica identity DEFAULT with a primary key on id, FULL, or an index on id;
                              not NOTHING
    action's primary key      (id): the target applies changes by id
    max_slot_wal_keep_size    a warning when -1 (unlimited): a stalled slot keeps WAL until
                              the disk is full
    the slot                  when given: exists, not lost (wal_status); a warning when
                              unreserved; when not given: a free slot to create it in

max_wal_senders does not matter: the SQL interface (pg_logical_slot_peek_binary_changes)
decodes in the connection's own backend, not in a WAL sender.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracking_sync.capture.errors import CaptureNotReady
from tracking_sync.capture.preflight_checks import (
    Finding,
    check_identity,
    check_publication,
    check_role,
    check_slot,
    check_wal_keep_size,
    check_wal_level,
)
from tracking_sync.capture.slot import PUBLICATION, SOURCE_SCHEMA
from tracking_sync.core.sql import render_sql
from tracking_sync.core.tables import ACTION


@dataclass(frozen=True)
class Preflight:
    problems: tuple[Finding, ...] = field(default_factory=tuple)
    warnings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        return [f"problem: {p}" for p in self.problems] + [f"warning: {w}" for w in self.warnings]

    def raise_for_problems(self) -> None:
        """One failure naming every problem: the first on the first line (what on-call's
        summary shows), the others below it."""
        if self.problems:
            first, *more = self.problems
            also = f" ({len(more)} more below)" if more else ""
            raise CaptureNotReady(
                f"the source is not ready for change capture: {first}{also}; nothing has moved yet"
                + "".join(f"\n{problem}" for problem in more)
            )


def _fetch(connection: Any, name: str, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(render_sql(f"postgres/capture/{name}.sql"), params)
        return cursor.fetchall()


def check_source(connection: Any, slot: str | None = None, publication: str = PUBLICATION) -> Preflight:
    """The problems and warnings of the source for change capture.

    `slot`: the capture's slot, when it should exist already (every run after the
    bootstrap); None before the bootstrap, which creates it (then a free slot is needed).
    """
    problems: list[Finding] = []
    warnings: list[Finding] = []
    try:
        settings = {
            name: (value, unit) for name, value, unit in _fetch(connection, "select_capture_settings")
        }
        check_wal_level(settings, problems)
        check_role(_fetch(connection, "select_capture_role")[0], problems)
        check_publication(
            _fetch(connection, "select_publication_tables", {"publication": publication}),
            publication,
            problems,
        )
        identity = _fetch(
            connection, "select_table_identity", {"schema": SOURCE_SCHEMA, "table": ACTION.name}
        )
        check_identity(identity[0] if identity else None, problems)
        check_wal_keep_size(settings, warnings)
    finally:
        connection.rollback()
    check_slot(connection, slot, settings, problems, warnings)
    return Preflight(tuple(problems), tuple(warnings))
