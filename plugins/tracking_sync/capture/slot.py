"""The capture's replication slot and publication on the source: names, creation, status,
advance and drop.

One slot per target schema (tracking_sync_<schema>): each target consumes the changes at
its own pace, and dropping one never disturbs another. One publication for all of them
(tracking_sync_action): it only says which table's changes pgoutput sends.

The slot is a logical slot of the pgoutput plugin, read through the SQL interface
(tracking_sync.capture.batch); it keeps the source's WAL from its restart_lsn on, and is
moved forward only after the target has stored the LSN of what it applied (advance_slot).
Every function takes an open psycopg2 connection and ends its own transaction.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tracking_sync.capture.errors import BOOTSTRAP, SlotLost, SlotMissing, SourceTableChanged
from tracking_sync.core.errors import InvalidParams
from tracking_sync.core.lsn import format_lsn, parse_lsn
from tracking_sync.core.sql import render_sql
from tracking_sync.core.tables import ACTION

PUBLICATION = "tracking_sync_action"
# Beyond three wal_writer_delays, how long a plan waits for the source to flush what was
# committed before it.
FLUSH_MARGIN_SECONDS = 0.5
SLOT_PREFIX = "tracking_sync_"
PLUGIN = "pgoutput"
SOURCE_SCHEMA = "public"  # where the source's action table lives (create_tables.sql)
MAX_SLOT_NAME_BYTES = 63  # NAMEDATALEN - 1
_SLOT_NAME = re.compile(r"^[a-z0-9_]+$")  # what PostgreSQL allows in a slot name


def slot_name(target_schema: str) -> str:
    """The slot of the target schema: tracking_sync_<schema>."""
    name = SLOT_PREFIX + target_schema
    if not _SLOT_NAME.match(name) or len(name) > MAX_SLOT_NAME_BYTES:
        raise InvalidParams(
            f"target schema {target_schema!r} gives the slot name {name!r}, which PostgreSQL "
            f"refuses: a slot name is lower-case letters, digits and _, at most "
            f"{MAX_SLOT_NAME_BYTES} bytes; use a schema name of at most "
            f"{MAX_SLOT_NAME_BYTES - len(SLOT_PREFIX)} such characters"
        )
    return name


@dataclass(frozen=True)
class SlotStatus:
    """A slot as pg_replication_slots shows it, LSNs as ints (tracking_sync.core.lsn)."""

    name: str
    plugin: str
    slot_type: str
    database: str
    active: bool
    wal_status: str  # reserved | extended | unreserved | lost
    confirmed_flush_lsn: int | None
    restart_lsn: int | None
    retained_wal_bytes: int | None  # pg_current_wal_lsn() - restart_lsn
    safe_wal_size: int | None  # None: max_slot_wal_keep_size is -1 (unlimited), or lost

    @property
    def is_lost(self) -> bool:
        return self.wal_status == "lost"


def _lsn_or_none(text: str | None) -> int | None:
    return None if text is None else parse_lsn(text)


def slot_status(connection: Any, slot: str) -> SlotStatus | None:
    """The slot's status, or None when there is no such slot."""
    with connection.cursor() as cursor:
        cursor.execute(render_sql("postgres/capture/select_slot_status.sql"), {"slot": slot})
        row = cursor.fetchone()
    connection.rollback()
    if row is None:
        return None
    name, plugin, slot_type, database, active, wal_status, confirmed, restart, retained, safe = row
    return SlotStatus(
        name=name,
        plugin=plugin,
        slot_type=slot_type,
        database=database,
        active=active,
        wal_status=wal_status,
        confirmed_flush_lsn=_lsn_or_none(confirmed),
        restart_lsn=_lsn_or_none(restart),
        retained_wal_bytes=retained,
        safe_wal_size=safe,
    )


def require_slot(connection: Any, slot: str) -> SlotStatus:
    """The slot's status; raises SlotMissing, SlotLost or SourceTableChanged (another plugin,
    another database) when a capture cannot read from it."""
    status = slot_status(connection, slot)
    if status is None:
        raise SlotMissing(
            f"replication slot {slot} does not exist on the source (dropped, or never created): "
            f"the changes since the last run cannot be read. {BOOTSTRAP}"
        )
    if status.is_lost:
        raise SlotLost(
            f"replication slot {slot} was invalidated (wal_status = 'lost'): the source removed "
            "WAL it still needed, because the slot fell behind by more than "
            "max_slot_wal_keep_size. The changes it held are gone: drop the slot "
            f"(select pg_drop_replication_slot('{slot}')) and {BOOTSTRAP}; raise "
            "max_slot_wal_keep_size, or run the capture more often, so it does not happen again"
        )
    if status.plugin != PLUGIN or status.slot_type != "logical":
        raise SourceTableChanged(
            f"replication slot {slot} is a {status.slot_type} slot of plugin {status.plugin!r}, "
            f"not a logical slot of {PLUGIN}: drop it (select pg_drop_replication_slot('{slot}')) "
            f"and {BOOTSTRAP}"
        )
    with connection.cursor() as cursor:
        cursor.execute("select current_database()")
        (database,) = cursor.fetchone()
    connection.rollback()
    if status.database != database:
        raise SourceTableChanged(
            f"replication slot {slot} belongs to database {status.database}, and the source "
            f"connection is to {database}: point the source connection at {status.database}, "
            f"or drop the slot and {BOOTSTRAP}"
        )
    return status


def publishes_action(published: dict | None) -> bool:
    """Whether a pg_publication_tables row (as JSON) is the source's action table."""
    return published is not None and (published["schemaname"], published["tablename"]) == (
        SOURCE_SCHEMA,
        ACTION.name,
    )


def ensure_publication(connection: Any, publication: str = PUBLICATION) -> bool:
    """Create the publication of action if it does not exist, or add action to it if it does
    not publish it; True when something was created or changed. Commits."""
    identifiers = {"publication": publication, "table": f"{SOURCE_SCHEMA}.{ACTION.name}"}
    with connection.cursor() as cursor:
        cursor.execute(
            render_sql("postgres/capture/select_publication_tables.sql"), {"publication": publication}
        )
        rows = cursor.fetchall()
        if not rows:
            cursor.execute(render_sql("postgres/capture/create_publication.sql", **identifiers))
        elif not any(publishes_action(row[-1]) for row in rows):
            cursor.execute(render_sql("postgres/capture/add_publication_table.sql", **identifiers))
        else:
            connection.rollback()
            return False
    connection.commit()
    return True


@dataclass(frozen=True)
class SlotCreated:
    slot: str
    consistent_lsn: int  # the changes of transactions committed from here on are captured
    created: bool  # False: the slot was there already (consistent_lsn is its confirmed position)


def create_slot(connection: Any, slot: str, publication: str = PUBLICATION) -> SlotCreated:
    """Create the publication (ensure_publication) and the slot, if missing.

    A bootstrap creates the slot BEFORE its full export and stores consistent_lsn as the
    target's applied LSN: the first batch then replays the changes committed between the
    slot's consistent point and the export's snapshot, which the export already holds;
    harmless, as the last image per id wins. A new slot waits for the transactions running
    on the source to end (that is how it finds its consistent point): a long-running
    transaction holds it up. The connection must not be in a transaction that has written
    anything.
    """
    ensure_publication(connection, publication)
    status = slot_status(connection, slot)
    if status is not None:
        if status.is_lost:
            require_slot(connection, slot)  # raises SlotLost with the fix
        return SlotCreated(slot, status.confirmed_flush_lsn or 0, created=False)
    with connection.cursor() as cursor:
        cursor.execute(render_sql("postgres/capture/create_slot.sql"), {"slot": slot})
        (lsn,) = cursor.fetchone()
    connection.commit()
    return SlotCreated(slot, parse_lsn(lsn), created=True)


@dataclass(frozen=True)
class WalPosition:
    flushed_lsn: int
    next_xid: int  # the next 64-bit xid8 to be assigned


def wal_position(connection: Any) -> WalPosition:
    """The source's flushed WAL position and next xid8."""
    with connection.cursor() as cursor:
        cursor.execute(render_sql("postgres/capture/select_wal_position.sql"))
        flushed, next_xid = cursor.fetchone()
    connection.rollback()
    return WalPosition(parse_lsn(flushed), next_xid)


def current_lsn(connection: Any) -> int:
    """The LSN a run plans its capture up to (upto_lsn): the source's flushed WAL position.

    Flushed, not the insert position (pg_current_wal_insert_lsn) nor the write position:
    the SQL interface decodes only the WAL flushed when the peek starts, so a later upto
    could end the batch short of a transaction that committed before it, and the
    watermark would then skip that transaction for good. Every transaction whose commit
    starts before the flushed position can be decoded.

    The position is where WAL was being inserted when the run planned, once the source has
    flushed up to it: every transaction that committed before the call (asynchronously too,
    with synchronous_commit off, as busy sources often run) is in the batch, not left for
    the next run's. The wal writer flushes an asynchronous commit within three times
    wal_writer_delay (PostgreSQL docs, "Asynchronous Commit"); past that, the flushed
    position holds every commit made before the call.
    """
    with connection.cursor() as cursor:
        cursor.execute(render_sql("postgres/capture/select_wal_insert_position.sql"))
        inserted, writer_delay_ms = cursor.fetchone()
    connection.rollback()
    target = parse_lsn(inserted)
    deadline = time.monotonic() + 3 * (writer_delay_ms or 200) / 1000 + FLUSH_MARGIN_SECONDS
    while True:
        flushed = wal_position(connection).flushed_lsn
        if flushed >= target or time.monotonic() > deadline:
            return min(flushed, target)
        time.sleep(0.05)


def advance_slot(connection: Any, slot: str, lsn: int) -> int:
    """Move the slot's confirmed position to `lsn`, after the target stored it as applied;
    returns the slot's confirmed position. A second call with the same (or an older) LSN
    does nothing: PostgreSQL refuses to move a slot backwards. Commits."""
    status = require_slot(connection, slot)
    if status.confirmed_flush_lsn is not None and status.confirmed_flush_lsn >= lsn:
        return status.confirmed_flush_lsn
    with connection.cursor() as cursor:
        cursor.execute(
            render_sql("postgres/capture/advance_slot.sql"), {"slot": slot, "lsn": format_lsn(lsn)}
        )
        (end_lsn,) = cursor.fetchone()
    connection.commit()
    return parse_lsn(end_lsn)


def drop_slot(connection: Any, slot: str) -> bool:
    """Drop the slot if it exists; True when it did. A slot in use by a reader (active) cannot
    be dropped: PostgreSQL raises. Commits."""
    if slot_status(connection, slot) is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute(render_sql("postgres/capture/drop_slot.sql"), {"slot": slot})
    connection.commit()
    return True


OBJECT_NOT_IN_PREREQUISITE_STATE = "55000"  # "can no longer get changes from replication slot"
DEFAULT_ITERSIZE = 1000  # rows per FETCH; a row holds one change, up to ~130 KiB with old image


@contextmanager
def peeked_changes(
    connection: Any,
    slot: str,
    upto_lsn: int,
    publication: str,
    *,
    name: str,
    itersize: int = DEFAULT_ITERSIZE,
) -> Iterator[Any]:
    """A named cursor over the slot's pgoutput messages up to `upto_lsn`, not consumed (peek),
    read `itersize` rows at a time, with the session printing values as the change rows need
    them (UTF-8, UTC, ISO). A slot invalidated between its status check and the peek raises
    SlotLost, with the fix. Leaves no transaction (nor the settings) behind."""
    with connection.cursor() as cursor:
        cursor.execute("set client_encoding to 'UTF8'")
        cursor.execute("set timezone to 'UTC'")
        cursor.execute("set datestyle to 'ISO, YMD'")
    try:
        with connection.cursor(name=f"{name}_{slot}") as cursor:
            cursor.itersize = itersize
            cursor.execute(
                render_sql("postgres/capture/peek_changes.sql"),
                {"slot": slot, "upto_lsn": format_lsn(upto_lsn), "publication": publication},
            )
            yield cursor
    except Exception as error:
        if getattr(error, "pgcode", None) == OBJECT_NOT_IN_PREREQUISITE_STATE and "no longer" in str(error):
            connection.rollback()
            require_slot(connection, slot)  # raises SlotLost, with the fix
        raise
    finally:
        connection.rollback()


def copy_statement(cursor: Any, slot: str, upto_lsn: int, publication: str) -> str:
    """`COPY (<peek_changes.sql>) TO STDOUT (FORMAT binary)`, its values inlined by the driver's
    own quoting (COPY takes no bind parameters). `"binary"` is quoted: the same option to
    PostgreSQL (its value is a name), and the form the SQL grammar the tests hold every
    statement to (sqlfluff's postgres dialect, tests/e2e/test_statement_grammar.py) parses:
    it reads an unquoted `binary` there as the keyword and refuses it."""
    select = cursor.mogrify(
        render_sql("postgres/capture/peek_changes.sql"),
        {"slot": slot, "upto_lsn": format_lsn(upto_lsn), "publication": publication},
    ).decode()
    return f'copy ({select}) to stdout with (format "binary")'


def copy_changes(connection: Any, slot: str, upto_lsn: int, publication: str, sink: Any) -> None:
    """The slot's pgoutput messages up to `upto_lsn`, not consumed (peek), as
    `COPY (...) TO STDOUT (FORMAT binary)` into sink.write() (psycopg2's copy_expert: one call
    per tuple, a message each; the binary format sends the bytea as it is, half the bytes of
    text's hex and less of the backend's CPU), with the session printing values as the change
    rows need them (UTF-8, UTC, ISO). A slot invalidated between its status check and the peek
    raises SlotLost, with the fix.

    An error raised by sink.write() leaves libpq inside the COPY: the rollback here (libpq's
    PQexec first drops the rest of a COPY OUT: fe-exec.c, PQexecStart) reads the rest of the
    stream and ends the transaction, so the connection is usable again. Leaves no transaction
    (nor the settings) behind. The peek's slot is released by the backend before the first
    row is sent (the SQL function materialises its result).
    """
    with connection.cursor() as cursor:
        cursor.execute("set client_encoding to 'UTF8'")
        cursor.execute("set timezone to 'UTC'")
        cursor.execute("set datestyle to 'ISO, YMD'")
        try:
            cursor.copy_expert(copy_statement(cursor, slot, upto_lsn, publication), sink)
        except Exception as error:
            if getattr(error, "pgcode", None) == OBJECT_NOT_IN_PREREQUISITE_STATE and "no longer" in str(
                error
            ):
                connection.rollback()
                require_slot(connection, slot)  # raises SlotLost, with the fix
            raise
        finally:
            connection.rollback()
