"""The wire-protocol proxy: Redshift's face in front of a PostgreSQL backend.

One asyncio task pair per client session relays PostgreSQL v3 protocol messages
and changes only what makes the real Redshift clients and SQL work:

- startup: SSLRequest is answered 'N'; parameters PostgreSQL does not know (the
  driver's client_protocol_version, driver_version, os_version, ...) are dropped;
  ParameterStatus server_version is reported as Redshift's 8.0.2; BackendKeyData
  passes unchanged so a CancelRequest, forwarded as is, reaches the backend.
- SQL in every Query and Parse goes through rewrite.rewrite_statement.
- COPY ... FROM 's3://...' becomes COPY ... FROM STDIN (FORMAT csv). When the
  backend answers CopyInResponse, the proxy streams the S3 rows itself (CopyData,
  then CopyDone, or CopyFail when more than MAXERROR rows were rejected), while
  it holds back the client's next messages: PostgreSQL ignores Sync in COPY-in
  mode, so the client's Sync must arrive after the COPY ends.
- errors: a failed load reads like Redshift's ("Load into table 'x' failed. ...",
  SQLSTATE XX000); a byte-length CHECK added by the compat catalog reads
  "value too long for type character varying(n)".
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import re
import struct
import threading
import time
from dataclasses import dataclass, field

from devstack.redshift import copy as rs_copy
from devstack.redshift.rewrite import rewrite_statement, split_statements

log = logging.getLogger("devstack.redshift")

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608
REDSHIFT_SERVER_VERSION = b"8.0.2"
_STARTUP_KEYS = {"user", "database", "options", "replication"}
_LENGTH_CHECK = re.compile(r"rs_\d+_(varchar|char)_(\d+)\Z")


def _message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def _cstr(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.index(b"\0", pos)
    return data[pos:end], end + 1


def error_response(message: str, sqlstate: str = "XX000", detail: str = "") -> bytes:
    fields = [b"SERROR", b"VERROR", b"C" + sqlstate.encode(), b"M" + message.encode()]
    if detail:
        fields.append(b"D" + detail.encode())
    return _message(b"E", b"\0".join(fields) + b"\0\0")


def parse_error_fields(payload: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(payload) and payload[pos] != 0:
        code = chr(payload[pos])
        value, pos = _cstr(payload, pos + 1)
        out[code] = value.decode("utf-8", "replace")
    return out


def build_error_fields(fields: dict[str, str]) -> bytes:
    return _message(b"E", b"".join(k.encode() + v.encode() + b"\0" for k, v in fields.items()) + b"\0")


@dataclass
class BackendConfig:
    host: str
    port: int
    user: str
    password: str
    database: str
    s3_endpoint_url: str
    s3_access_key_id: str = "stack-access-key"
    s3_secret_access_key: str = "stack-secret-key-never-logged"
    s3_region: str = "us-east-1"


class SideConnection:
    """A superuser connection of the proxy's own: catalog lookups and stl_load_errors.

    Autocommit and separate from the client's session, so the load errors it
    writes survive the client's rollback (docs: r_STL_LOAD_ERRORS).
    """

    def __init__(self, config: BackendConfig):
        self._config = config
        self._conn = None
        self._lock = threading.Lock()

    def _connect(self):
        import psycopg2

        if self._conn is None or self._conn.closed:
            c = self._config
            self._conn = psycopg2.connect(
                host=c.host,
                port=c.port,
                user=c.user,
                password=c.password,
                dbname=c.database,
                application_name="redshift-stand-in",
            )
            self._conn.autocommit = True
        return self._conn

    def query(self, sql: str, params=()) -> list[tuple]:
        with self._lock:
            for attempt in (1, 2):
                try:
                    with self._connect().cursor() as cur:
                        cur.execute(sql, params)
                        return cur.fetchall() if cur.description else []
                except Exception:
                    if attempt == 2 or (self._conn is not None and not self._conn.closed):
                        raise
                    self._conn = None
        return []

    def guc_names(self) -> set[str]:
        return {row[0].lower() for row in self.query("select name from pg_settings")}

    def copy_target(self, backend_pid: int, spec: rs_copy.CopySpec) -> tuple[int, list[rs_copy.TargetColumn]]:
        """The table a session's running COPY writes to, found by the lock it holds.

        The client session is in COPY-in mode and cannot be asked; its #temp tables
        are invisible by name from here, but the RowExclusiveLock COPY took on the
        target is visible in pg_locks with the backend's pid.
        """
        rows = self.query(
            """
            select c.oid, n.nspname like 'pg_temp%%' as is_temp
            from pg_locks l
            join pg_class c on c.oid = l.relation
            join pg_namespace n on n.oid = c.relnamespace
            where l.pid = %s and l.locktype = 'relation' and l.mode = 'RowExclusiveLock'
              and l.database = (select oid from pg_database where datname = current_database())
              and c.relname = %s and (%s::text is null or n.nspname = %s::text)
              and c.relkind in ('r', 'p')
            order by 2 desc
            """,
            (backend_pid, spec.table, spec.schema, spec.schema),
        )
        if not rows:
            raise rs_copy.CopyLoadError(f'relation "{spec.table}" was not found for COPY', sqlstate="42P01")
        oid = rows[0][0]
        cols = self.query(
            """
            select a.attname, t.typname, a.atttypmod, a.attnotnull,
                   format_type(a.atttypid, a.atttypmod), a.attnum
            from pg_attribute a
            join pg_type t on t.oid = a.atttypid
            where a.attrelid = %s and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
            order by a.attnum
            """,
            (oid,),
        )
        by_name = {r[0]: rs_copy.TargetColumn(r[0], r[1], r[2], r[3], r[4]) for r in cols}
        if spec.columns:
            missing = [c for c in spec.columns if c not in by_name]
            if missing:
                raise rs_copy.CopyLoadError(
                    f'column "{missing[0]}" of relation "{spec.table}" does not exist',
                    sqlstate="42703",
                )
            return oid, [by_name[c] for c in spec.columns]
        return oid, [rs_copy.TargetColumn(r[0], r[1], r[2], r[3], r[4]) for r in cols]

    def record_load_errors(
        self,
        rows: list[rs_copy.RejectedRow],
        *,
        user: str,
        tbl: int,
        session: int,
        query: int,
        starttime: dt.datetime,
    ) -> None:
        if not rows:
            return
        import psycopg2.extras

        with self._lock:
            conn = self._connect()
            with conn.cursor() as cur:
                psycopg2.extras.execute_values(
                    cur,
                    """
                    insert into pg_catalog.stl_load_errors (userid, slice, tbl, starttime, session,
                        query, filename, line_number, colname, type, col_length, position,
                        raw_line, raw_field_value, err_code, err_reason, is_partial, start_offset)
                    values %s
                    """,
                    [
                        (
                            user,
                            0,
                            tbl,
                            starttime,
                            session,
                            query,
                            r.filename,
                            r.line_number,
                            r.colname,
                            r.type,
                            r.col_length,
                            r.position,
                            r.raw_line[:1024],
                            r.raw_field_value[:1024],
                            r.err_code,
                            r.err_reason[:100],
                            0,
                            0,
                        )
                        for r in rows
                    ],
                    template="((select usesysid from pg_user where usename = %s), %s, %s, %s, %s,"
                    " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                )

    def next_query_id(self) -> int:
        return self.query("select nextval('pg_catalog.rs_query_id_seq')")[0][0]


class S3Clients:
    """boto3 clients by credentials; built once, used from worker threads."""

    def __init__(self, config: BackendConfig):
        self._config = config
        self._clients: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def for_spec(self, spec: rs_copy.CopySpec):
        import boto3
        from botocore.config import Config

        c = self._config
        if spec.iam_role:  # no STS here: an IAM role loads with the stand-in's own keys
            key = (c.s3_access_key_id, c.s3_secret_access_key, None)
        else:
            key = (spec.access_key_id, spec.secret_access_key, spec.session_token)
        region = spec.region or c.s3_region
        with self._lock:
            client = self._clients.get(key + (region,))
            if client is None:
                client = boto3.client(
                    "s3",
                    endpoint_url=c.s3_endpoint_url,
                    region_name=region,
                    aws_access_key_id=key[0],
                    aws_secret_access_key=key[1],
                    aws_session_token=key[2],
                    config=Config(retries={"max_attempts": 2}),
                )
                self._clients[key + (region,)] = client
            return client


CATALOG_MARKER = "__rs_copy_target__"


def catalog_sql(spec: rs_copy.CopySpec) -> str:
    """The target's columns, asked IN the client's session: it sees that session's
    #temp tables and the tables created by its open transaction, which no other
    connection can see."""
    target = spec.target_sql.replace("'", "''")
    return (
        f"select a.attname::text as {CATALOG_MARKER}, t.typname::text, a.atttypmod, a.attnotnull,"
        " pg_catalog.format_type(a.atttypid, a.atttypmod), a.attrelid::int"
        " from pg_catalog.pg_attribute a join pg_catalog.pg_type t on t.oid = a.atttypid"
        f" where a.attrelid = pg_catalog.to_regclass('{target}')"
        " and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''"
        " order by a.attnum"
    )


def _data_row(payload: bytes) -> list[str | None]:
    (count,) = struct.unpack_from("!H", payload, 0)
    pos, out = 2, []
    for _ in range(count):
        (size,) = struct.unpack_from("!i", payload, pos)
        pos += 4
        if size < 0:
            out.append(None)
        else:
            out.append(payload[pos : pos + size].decode("utf-8"))
            pos += size
    return out


def _catalog_columns(rows: list[list[str | None]], spec: rs_copy.CopySpec):
    """(table oid, columns in COPY order) from catalog_sql() rows, or None when unknown."""
    if not rows:
        return None
    cols = [rs_copy.TargetColumn(r[0], r[1], int(r[2]), r[3] == "t", r[4]) for r in rows]
    tbl = int(rows[0][5])
    if spec.columns:
        by_name = {c.name: c for c in cols}
        if any(c not in by_name for c in spec.columns):
            return None  # PostgreSQL reports the unknown column itself
        return tbl, [by_name[c] for c in spec.columns]
    return tbl, cols


@dataclass
class PendingCopy:
    spec: rs_copy.CopySpec
    target: tuple | None = None  # (table oid, columns), when known before the COPY starts


@dataclass
class Session:
    server: RedshiftProxy
    client_reader: asyncio.StreamReader
    client_writer: asyncio.StreamWriter
    backend_reader: asyncio.StreamReader | None = None
    backend_writer: asyncio.StreamWriter | None = None
    user: str = ""
    backend_pid: int = 0
    statements: dict[bytes, object] = field(default_factory=dict)  # name → CopySpec | CopySyntaxError
    portals: dict[bytes, object] = field(default_factory=dict)
    pending: collections.deque = field(default_factory=collections.deque)
    copy_idle: asyncio.Event = field(default_factory=asyncio.Event)
    load_failure: bytes | None = None  # the ErrorResponse to send instead of PostgreSQL's
    # Sync/Query messages sent and not yet answered by ReadyForQuery; idle when 0
    outstanding: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    batch_open: bool = False  # extended-protocol messages forwarded since the last Sync
    injected: asyncio.Future | None = None  # our own catalog query, answered by the backend
    injected_rows: list = field(default_factory=list)
    inband_rows: list | None = None  # catalog rows of a simple Query's own catalog SELECT
    targets: dict[int, tuple] = field(default_factory=dict)  # id(spec) → (oid, columns)

    # ------------------------------------------------------------------ startup

    async def run(self) -> None:
        try:
            if not await self._startup():
                return
            self.copy_idle.set()
            self.idle.set()
            to_backend = asyncio.create_task(self._client_to_backend())
            to_client = asyncio.create_task(self._backend_to_client())
            done, pending = await asyncio.wait({to_backend, to_client}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in done:
                if task.exception() and not isinstance(
                    task.exception(), (ConnectionError, asyncio.IncompleteReadError)
                ):
                    log.warning("session ended with %r", task.exception())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            for writer in (self.backend_writer, self.client_writer):
                if writer is not None:
                    writer.close()

    async def _startup(self) -> bool:
        while True:
            header = await self.client_reader.readexactly(4)
            (length,) = struct.unpack("!I", header)
            body = await self.client_reader.readexactly(length - 4)
            (code,) = struct.unpack("!I", body[:4])
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.client_writer.write(b"N")
                await self.client_writer.drain()
                continue
            if code == CANCEL_REQUEST:
                await self._forward_cancel(header + body)
                return False
            if code != PROTOCOL_3:
                self.client_writer.write(error_response("unsupported frontend protocol", "0A000"))
                await self.client_writer.drain()
                return False
            break
        params = body[4:].split(b"\0")
        pairs = dict(zip(params[0:-1:2], params[1::2]))
        allowed = self.server.startup_parameters
        kept = {
            k: v
            for k, v in pairs.items()
            if k and (k.decode().lower() in _STARTUP_KEYS or k.decode().lower() in allowed)
        }
        self.user = kept.get(b"user", b"").decode()
        payload = (
            struct.pack("!I", PROTOCOL_3) + b"".join(k + b"\0" + v + b"\0" for k, v in kept.items()) + b"\0"
        )
        cfg = self.server.config
        self.backend_reader, self.backend_writer = await asyncio.open_connection(cfg.host, cfg.port)
        self.backend_writer.write(struct.pack("!I", len(payload) + 4) + payload)
        await self.backend_writer.drain()
        return True

    async def _forward_cancel(self, packet: bytes) -> None:
        cfg = self.server.config
        _, writer = await asyncio.open_connection(cfg.host, cfg.port)
        writer.write(packet)
        await writer.drain()
        writer.close()

    # ------------------------------------------------------------------ client → backend

    async def _client_to_backend(self) -> None:
        reader, writer = self.client_reader, self.backend_writer
        buffer = bytearray()
        while True:
            data = await reader.read(1 << 16)
            if not data:
                writer.write_eof() if writer.can_write_eof() else None
                return
            buffer += data
            out = bytearray()
            pos = 0
            while len(buffer) - pos >= 5:
                kind = buffer[pos : pos + 1]
                (length,) = struct.unpack_from("!I", buffer, pos + 1)
                end = pos + 1 + length
                if len(buffer) < end:
                    break
                payload = bytes(buffer[pos + 5 : end])
                pos = end
                if kind == b"Q":
                    message, waits = self._on_query(payload)
                    self._sent_sync()
                    out += message
                    if waits:
                        await self._hold_until_copy_done(writer, out)
                        out = bytearray()
                elif kind == b"P":
                    name, spec, message = self._on_parse(payload)
                    if spec is not None and not self.batch_open:
                        out = await self._ask_catalog(spec, out)
                    self.batch_open = True
                    out += message
                elif kind == b"B":
                    portal, pos2 = _cstr(payload, 0)
                    statement, _ = _cstr(payload, pos2)
                    spec = self.statements.get(statement)
                    if spec is not None:
                        self.portals[portal] = spec
                        if isinstance(spec, rs_copy.CopySpec) and not self.batch_open:
                            # a cached statement run again: the table may have changed
                            out = await self._ask_catalog(spec, out)
                    else:
                        self.portals.pop(portal, None)
                    self.batch_open = True
                    out += _message(kind, payload)
                elif kind == b"E":
                    portal, _ = _cstr(payload, 0)
                    self.batch_open = True
                    out += _message(kind, payload)
                    spec = self.portals.get(portal)
                    if isinstance(spec, rs_copy.CopySpec):
                        self.pending.append(PendingCopy(spec, self.targets.get(id(spec))))
                        await self._hold_until_copy_done(writer, out)
                        out = bytearray()
                elif kind == b"C":
                    which, name = payload[:1], payload[1:-1]
                    (self.statements if which == b"S" else self.portals).pop(name, None)
                    self.batch_open = True
                    out += _message(kind, payload)
                elif kind == b"S":
                    self._sent_sync()
                    out += _message(kind, payload)
                elif kind == b"D":
                    self.batch_open = True
                    out += _message(kind, payload)
                else:
                    out += _message(kind, payload)
            del buffer[:pos]
            if out:
                writer.write(out)
                await writer.drain()

    async def _hold_until_copy_done(self, writer: asyncio.StreamWriter, out: bytearray) -> None:
        """Send what came before, then forward nothing until the S3 COPY has ended."""
        self.copy_idle.clear()
        writer.write(out)
        await writer.drain()
        await self.copy_idle.wait()

    def _sent_sync(self) -> None:
        self.outstanding += 1
        self.idle.clear()
        self.batch_open = False

    async def _ask_catalog(self, spec: rs_copy.CopySpec, out: bytearray) -> bytearray:
        """Run catalog_sql() in the client's session while it is idle; the answer is ours."""
        writer = self.backend_writer
        if out:
            writer.write(out)
            await writer.drain()
        await self.idle.wait()
        self.injected = asyncio.get_running_loop().create_future()
        self.injected_rows = []
        writer.write(_message(b"Q", catalog_sql(spec).encode("utf-8") + b"\0"))
        await writer.drain()
        rows = await self.injected
        target = _catalog_columns(rows, spec) if rows else None
        if target is not None:
            self.targets[id(spec)] = target
        else:
            self.targets.pop(id(spec), None)
        return bytearray()

    def _on_query(self, payload: bytes) -> tuple[bytes, bool]:
        sql = payload[:-1].decode("utf-8")
        if "s3://" not in sql.lower() or not any(rs_copy.is_s3_copy(s) for s in split_statements(sql)):
            return _message(b"Q", rewrite_statement(sql).encode() + b"\0"), False
        parts = []
        waits = False
        for statement in split_statements(sql):
            if rs_copy.is_s3_copy(statement):
                try:
                    spec = rs_copy.parse_copy(statement)
                except (rs_copy.CopySyntaxError, ValueError) as exc:
                    parts.append(_raise_sql(str(exc), getattr(exc, "sqlstate", "42601")))
                    continue
                self.pending.append(PendingCopy(spec))
                waits = True
                parts.append(catalog_sql(spec))  # answered in-band, kept from the client
                parts.append(spec.postgres_copy())
            else:
                parts.append(rewrite_statement(statement))
        return _message(b"Q", ";\n".join(parts).encode() + b"\0"), waits

    def _on_parse(self, payload: bytes) -> tuple[bytes, rs_copy.CopySpec | None, bytes]:
        name, pos = _cstr(payload, 0)
        query, pos = _cstr(payload, pos)
        rest = payload[pos:]
        sql = query.decode("utf-8")
        self.statements.pop(name, None)
        spec = None
        if "s3://" in sql.lower() and rs_copy.is_s3_copy(sql):
            try:
                spec = rs_copy.parse_copy(sql)
                self.statements[name] = spec
                sql = spec.postgres_copy()
            except (rs_copy.CopySyntaxError, ValueError) as exc:
                sql = _raise_sql(str(exc), getattr(exc, "sqlstate", "42601"))
        else:
            sql = rewrite_statement(sql)
        return name, spec, _message(b"P", name + b"\0" + sql.encode("utf-8") + b"\0" + rest)

    # ------------------------------------------------------------------ backend → client

    async def _backend_to_client(self) -> None:
        reader, writer = self.backend_reader, self.client_writer
        buffer = bytearray()
        while True:
            data = await reader.read(1 << 16)
            if not data:
                return
            buffer += data
            out = bytearray()
            pos = 0
            while len(buffer) - pos >= 5:
                kind = buffer[pos : pos + 1]
                (length,) = struct.unpack_from("!I", buffer, pos + 1)
                end = pos + 1 + length
                if len(buffer) < end:
                    break
                start = pos
                pos = end
                if self.injected is not None:  # the answer to _ask_catalog, not for the client
                    if kind == b"D":
                        self.injected_rows.append(_data_row(bytes(buffer[start + 5 : end])))
                    elif kind == b"E":
                        self.injected_rows = []
                    elif kind == b"Z":
                        self.injected.set_result(self.injected_rows)
                        self.injected = None
                    continue
                if self.inband_rows is not None:  # a simple Query's catalog SELECT
                    if kind == b"D":
                        self.inband_rows.append(_data_row(bytes(buffer[start + 5 : end])))
                        continue
                    if kind == b"C":
                        if self.pending:
                            self.pending[0].target = _catalog_columns(self.inband_rows, self.pending[0].spec)
                        self.inband_rows = None
                        continue
                    self.inband_rows = None
                if kind == b"T" and self.pending and CATALOG_MARKER.encode() in buffer[start:end]:
                    self.inband_rows = []
                    continue
                if kind in (b"D", b"C", b"2", b"1", b"T", b"n", b"t", b"s", b"I"):
                    out += buffer[start:end]
                    continue
                payload = bytes(buffer[start + 5 : end])
                if kind == b"Z":
                    self.outstanding = max(0, self.outstanding - 1)
                    if self.outstanding == 0:
                        self.idle.set()
                    out += buffer[start:end]
                elif kind == b"S":
                    out += self._on_parameter_status(payload)
                elif kind == b"K":
                    self.backend_pid = struct.unpack("!I", payload[:4])[0]
                    out += buffer[start:end]
                elif kind == b"G" and self.pending:
                    # the backend waits for our rows: send what we have for the client first
                    if out:
                        writer.write(out)
                        out = bytearray()
                    await self._run_s3_copy(self.pending.popleft())
                    if not self.pending:
                        self.copy_idle.set()
                elif kind == b"E":
                    out += self._on_error(payload)
                    if self.pending:  # the backend skips the rest: no COPY will start
                        self.pending.clear()
                    self.copy_idle.set()
                else:
                    out += buffer[start:end]
            del buffer[:pos]
            if out:
                writer.write(out)
                await writer.drain()

    def _on_parameter_status(self, payload: bytes) -> bytes:
        key, pos = _cstr(payload, 0)
        if key == b"server_version":
            payload = b"server_version\0" + REDSHIFT_SERVER_VERSION + b"\0"
        return _message(b"S", payload)

    def _on_error(self, payload: bytes) -> bytes:
        if self.load_failure is not None:
            replacement, self.load_failure = self.load_failure, None
            return replacement
        fields = parse_error_fields(payload)
        constraint = fields.get("n", "")
        match = _LENGTH_CHECK.match(constraint) if fields.get("C") == "23514" else None
        if match:
            kind = "character varying" if match.group(1) == "varchar" else "character"
            # docs: r_Character_types — Redshift's wording for an over-long value
            fields["C"] = "22001"
            fields["M"] = f"value too long for type {kind}({match.group(2)})"
            fields.pop("D", None)
            return build_error_fields(fields)
        return _message(b"E", payload)

    # ------------------------------------------------------------------ the S3 COPY

    async def _run_s3_copy(self, pending: PendingCopy) -> None:
        spec = pending.spec
        writer = self.backend_writer
        server = self.server
        starttime = dt.datetime.utcnow()
        result = rs_copy.LoadResult()
        cancelled = threading.Event()
        started = time.monotonic()
        tbl = 0
        try:
            if pending.target is not None:
                tbl, columns = pending.target
            else:  # not asked in-session (a pipelined client): the committed catalog
                tbl, columns = await asyncio.to_thread(server.side.copy_target, self.backend_pid, spec)
            client = await asyncio.to_thread(server.s3.for_spec, spec)
            chunks = rs_copy.generate_copy_data(spec, columns, client, result, cancelled)
            while True:
                chunk = await asyncio.to_thread(next, chunks, None)
                if chunk is None:
                    break
                writer.write(b"d" + struct.pack("!I", len(chunk) + 4) + chunk)
                await writer.drain()
        except rs_copy.CopyLoadError as exc:
            await self._fail_copy(exc.message, exc.sqlstate, exc.detail)
            return
        except Exception as exc:  # S3 or parse trouble: the COPY fails, the session lives
            log.exception("COPY from %s failed", spec.source)
            await self._fail_copy(f"Load from {spec.source} failed: {exc}", "XX000")
            return
        finally:
            cancelled.set()
        query_id = 0
        if result.rejected:
            try:
                query_id = await asyncio.to_thread(server.side.next_query_id)
                await asyncio.to_thread(
                    server.side.record_load_errors,
                    result.rejected,
                    user=self.user,
                    tbl=tbl,
                    session=self.backend_pid,
                    query=query_id,
                    starttime=starttime,
                )
            except Exception:  # the load's own outcome still reaches the client
                log.exception("could not record %d rows in stl_load_errors", len(result.rejected))
        if result.failed:
            first = result.rejected[0]
            message = (
                f"Load into table '{spec.table}' failed. Check 'stl_load_errors' system table for details."
            )
            detail = (
                "\n  -----------------------------------------------\n"
                f"  error:  {first.err_reason}\n"
                f"  code:      {first.err_code}\n"
                f"  context:   {first.colname or first.raw_line[:100]}\n"
                f"  query:     {query_id}\n"
                f"  location:  {first.filename}:{first.line_number}\n"
                "  -----------------------------------------------\n"
            )
            await self._fail_copy(message, "XX000", detail)
            return
        writer.write(_message(b"c", b""))
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

    async def _fail_copy(self, message: str, sqlstate: str, detail: str = "") -> None:
        self.load_failure = error_response(message, sqlstate, detail)
        self.backend_writer.write(_message(b"f", message.encode("utf-8") + b"\0"))
        await self.backend_writer.drain()


def _raise_sql(message: str, sqlstate: str) -> str:
    """A statement that fails with this error when executed (the COPY text was wrong)."""
    quoted = message.replace("'", "''")
    return (
        "DO $rs_copy$ BEGIN RAISE EXCEPTION USING MESSAGE = '"
        + quoted.replace("$", "")
        + f"', ERRCODE = '{sqlstate}'; END $rs_copy$"
    )


class RedshiftProxy:
    """The listening server: one Session per client connection."""

    def __init__(self, config: BackendConfig):
        self.config = config
        self.side = SideConnection(config)
        self.s3 = S3Clients(config)
        self.startup_parameters: set[str] = set()
        self.sessions: set[asyncio.Task] = set()

    async def serve(
        self, host: str, port: int, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None
    ) -> None:
        self.startup_parameters = await asyncio.to_thread(self.side.guc_names)
        server = await asyncio.start_server(self._on_client, host, port, reuse_address=True)
        log.info("Redshift stand-in listening on %s:%d", host, port)
        if ready is not None:
            ready.set()
        async with server:
            if stop is None:
                await server.serve_forever()
            else:
                await stop.wait()
        for task in list(self.sessions):
            task.cancel()
        if self.sessions:
            await asyncio.wait(self.sessions, timeout=5)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.sessions.add(task)
        try:
            await Session(self, reader, writer).run()
        except asyncio.CancelledError:
            writer.close()
        finally:
            self.sessions.discard(task)
