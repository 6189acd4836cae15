"""One COPY FROM 's3://...' fed to the backend's COPY FROM STDIN, as Redshift loads it.

When the backend answers CopyInResponse, the session hands the COPY over here:
the S3 rows go as CopyData, then CopyDone; a load Redshift would fail (a file
missing, more than MAXERROR rejected rows) sends CopyFail instead, so PostgreSQL
rolls the COPY back with its transaction (docs: r_COPY), and the client is told
in Redshift's words (errors.load_failed). Rejected rows go to stl_load_errors on
the proxy's own connection, so they outlive that rollback (docs: r_STL_LOAD_ERRORS).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass

from devstack.redshift import protocol
from devstack.redshift.catalog import CatalogConnection, CopyTarget
from devstack.redshift.copy import CopyLoadError, CopySpec, LoadResult, S3Clients, generate_copy_data
from devstack.redshift.errors import load_failed

log = logging.getLogger("devstack.redshift")


@dataclass
class PendingCopy:
    """A COPY sent to the backend whose CopyInResponse has not come yet."""

    spec: CopySpec
    target: CopyTarget | None = None  # when asked in the client's session before the COPY started


@dataclass
class CopySession:
    """What a COPY needs to know of the client session it runs in."""

    user: str
    backend_pid: int
    backend_writer: asyncio.StreamWriter


async def run_s3_copy(
    pending: PendingCopy, session: CopySession, catalog: CatalogConnection, s3: S3Clients
) -> bytes | None:
    """Feed one COPY; the ErrorResponse the client gets instead of PostgreSQL's when it failed."""
    spec = pending.spec
    writer = session.backend_writer
    starttime = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    result = LoadResult()
    cancelled = threading.Event()
    started = time.monotonic()
    tbl = 0
    next_chunk: asyncio.Future | None = None
    try:
        if pending.target is not None:
            tbl, columns = pending.target
        else:  # not asked in-session (a pipelined client): the committed catalog
            tbl, columns = await asyncio.to_thread(catalog.copy_target, session.backend_pid, spec)
        client = await asyncio.to_thread(s3.for_spec, spec)
        chunks = generate_copy_data(spec, columns, client, result, cancelled)
        next_chunk = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
        while True:
            chunk = await next_chunk
            if chunk is None:
                break
            # the next chunk is made while PostgreSQL reads this one: made only after the
            # drain, the two took turns (measured: PostgreSQL's time plus ours)
            next_chunk = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
            writer.write(protocol.copy_data(chunk))
            await writer.drain()
    except CopyLoadError as exc:
        return await _fail_copy(writer, exc.message, exc.sqlstate, exc.detail)
    except Exception as exc:  # S3 or parse trouble: the COPY fails, the session lives
        log.exception("COPY from %s failed", spec.source)
        return await _fail_copy(writer, f"Load from {spec.source} failed: {exc}", "XX000")
    finally:
        cancelled.set()
        if next_chunk is not None and not next_chunk.done():
            next_chunk.cancel()  # the backend went away mid-COPY: its chunk goes nowhere
    query_id = 0
    if result.rejected:
        try:
            query_id = await asyncio.to_thread(catalog.next_query_id)
            await asyncio.to_thread(
                catalog.record_load_errors,
                result.rejected,
                user=session.user,
                tbl=tbl,
                session=session.backend_pid,
                query=query_id,
                starttime=starttime,
            )
        except Exception:  # the load's own outcome still reaches the client
            log.exception("could not record %d rows in stl_load_errors", len(result.rejected))
    if result.failed:
        message, detail = load_failed(spec.table, result.rejected[0], query_id)
        return await _fail_copy(writer, message, "XX000", detail)
    writer.write(protocol.copy_done())
    await writer.drain()
    elapsed = time.monotonic() - started
    log.info(
        "COPY %s from %s: %d rows from %d files in %.2fs (%.0f rows/s), %d rejected",
        spec.table,
        spec.source,
        result.rows,
        result.files,
        elapsed,
        result.rows / elapsed if elapsed else 0,
        len(result.rejected),
    )
    return None


async def _fail_copy(writer: asyncio.StreamWriter, message: str, sqlstate: str, detail: str = "") -> bytes:
    writer.write(protocol.copy_fail(message))
    await writer.drain()
    return protocol.error_response(message, sqlstate, detail)
