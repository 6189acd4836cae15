"""One client session: its messages relayed to a backend session of its own, one handler a message.

Both directions, client → backend and backend → client, run side by side through
one relay loop: it cuts the stream with a protocol.Framer and calls the handler
of each message type (handle_<message> for the client's, on_<message> for the
backend's); a message without a handler passes unchanged. What the handlers change:

- SQL in every Query and Parse goes through rewrite.rewrite_statement;
- COPY ... FROM 's3://...' becomes COPY ... FROM STDIN (FORMAT csv), and when the
  backend answers CopyInResponse, copy_in.run_s3_copy feeds it, while the
  client's next messages are held back: PostgreSQL ignores Sync in COPY-in mode,
  so the client's Sync must arrive after the COPY ends;
- before such a COPY runs, its target's columns are asked in the client's own
  session (catalog.copy_target_query), the only one that sees its #temp tables:
  alone while the session is idle (extended protocol), or in-band ahead of the
  COPY in the same Query (simple protocol); the answer never reaches the client;
- a lone LOCK outside a transaction block holds nothing, as on Redshift (docs: r_LOCK);
- a statement Redshift refuses (refusals.py) is replaced by one that raises Redshift's
  error, so PostgreSQL never runs it;
- TRUNCATE inside a transaction block first commits the block, as on Redshift
  (docs: r_TRUNCATE: "commits the transaction in which it is run");
- every Query and Parse is appended to the statement log when one is configured
  (statement_log.py, $DEVSTACK_REDSHIFT_STATEMENT_LOG);
- server_version reads Redshift's 8.0.2; errors read as Redshift's (errors.py),
  a serialization failure as error 1023 naming the table the statement wrote to.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from devstack.redshift import protocol
from devstack.redshift.catalog import COPY_TARGET_MARKER, copy_target_from_rows, copy_target_query
from devstack.redshift.copy import CopySpec, is_s3_copy, translate_copy
from devstack.redshift.copy_in import CopySession, PendingCopy, run_s3_copy
from devstack.redshift.errors import (
    SERIALIZATION_FAILURE,
    serializable_isolation_violation,
    translate_error,
    translate_notice,
    written_table,
)
from devstack.redshift.protocol import Backend, Frontend, TransactionStatus, cstring, payload_of
from devstack.redshift.refusals import check_size, check_statement, refusal_sql
from devstack.redshift.rewrite import is_lock, lock_outside_transaction, rewrite_statement, split_statements
from devstack.redshift.tokens import significant, tokenize

log = logging.getLogger("devstack.redshift")

REDSHIFT_SERVER_VERSION = b"8.0.2"
_READ_SIZE = 1 << 16
# backend messages relayed to the client untouched, without a handler call
_RELAYED = frozenset(
    {
        Backend.DATA_ROW,
        Backend.COMMAND_COMPLETE,
        Backend.BIND_COMPLETE,
        Backend.PARSE_COMPLETE,
        Backend.NO_DATA,
        Backend.PARAMETER_DESCRIPTION,
        Backend.PORTAL_SUSPENDED,
        Backend.EMPTY_QUERY_RESPONSE,
    }
)


class Session:
    """A client connection and its backend connection, after the startup handshake."""

    def __init__(
        self,
        proxy,
        client_reader,
        client_writer,
        backend_reader,
        backend_writer,
        user: str,
        application: str = "",
    ):
        self.proxy = proxy  # server.RedshiftProxy: catalog connection, S3 clients, statement log
        self.application = application
        self.statement_log = getattr(proxy, "statement_log", None)
        self.client_reader, self.client_writer = client_reader, client_writer
        self.backend_reader, self.backend_writer = backend_reader, backend_writer
        self.user = user
        self.backend_pid = 0
        self.to_backend = bytearray()  # messages for the backend, sent after each read
        self.to_client = bytearray()
        # COPY from S3, by prepared statement and portal name
        self.statements: dict[bytes, CopySpec] = {}
        self.portals: dict[bytes, CopySpec] = {}
        self.targets: dict[int, tuple] = {}  # id(spec) → CopyTarget asked in-session
        self.pending: collections.deque[PendingCopy] = collections.deque()
        self.copy_idle = asyncio.Event()  # no COPY from S3 running or about to
        self.load_failure: bytes | None = None  # the ErrorResponse to send instead of PostgreSQL's
        # Sync/Query messages sent and not yet answered by ReadyForQuery; idle when 0
        self.outstanding = 0
        self.idle = asyncio.Event()
        self.batch_open = False  # extended-protocol messages forwarded since the last Sync
        self.injected: asyncio.Future | None = None  # our own catalog query, answered by the backend
        self.injected_rows: list = []
        self.inband_rows: list | None = None  # catalog rows of a simple Query's own catalog SELECT
        self.transaction_status = TransactionStatus.IDLE
        # the client's SQL by prepared statement and portal, and the last statements of
        # the open transaction: the table a serialization failure names is the one the
        # transaction wrote last (errors.serializable_isolation_violation)
        self.statement_sql: dict[bytes, str] = {}
        self.portal_sql: dict[bytes, str | None] = {}
        self.transaction_sql: collections.deque[str] = collections.deque(maxlen=32)
        self.truncate_statements: set[bytes] = set()  # prepared statements that are a TRUNCATE
        self.refused: list[str] = []  # what the stand-in refused in the current Query
        self._client_handlers = {
            Frontend.QUERY: self.handle_query,
            Frontend.PARSE: self.handle_parse,
            Frontend.BIND: self.handle_bind,
            Frontend.EXECUTE: self.handle_execute,
            Frontend.DESCRIBE: self.handle_describe,
            Frontend.CLOSE: self.handle_close,
            Frontend.SYNC: self.handle_sync,
        }
        self._backend_handlers = {
            Backend.ROW_DESCRIPTION: self.on_row_description,
            Backend.READY_FOR_QUERY: self.on_ready_for_query,
            Backend.PARAMETER_STATUS: self.on_parameter_status,
            Backend.BACKEND_KEY_DATA: self.on_backend_key_data,
            Backend.COPY_IN_RESPONSE: self.on_copy_in_response,
            Backend.ERROR_RESPONSE: self.on_error_response,
            Backend.NOTICE_RESPONSE: self.on_notice_response,
        }

    async def run(self) -> None:
        self.copy_idle.set()
        self.idle.set()
        try:
            pumps = {
                asyncio.create_task(self.relay(self.client_reader, self.from_client, self.client_closed)),
                asyncio.create_task(self.relay(self.backend_reader, self.from_backend, None)),
            }
            done, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in done:
                if task.exception() and not isinstance(
                    task.exception(), (ConnectionError, asyncio.IncompleteReadError)
                ):
                    log.warning("session ended with %r", task.exception())
        finally:
            for writer in (self.backend_writer, self.client_writer):
                writer.close()

    async def relay(self, reader: asyncio.StreamReader, dispatch, at_end) -> None:
        """Read one direction until it ends, its messages cut by a Framer and dispatched a read at a time."""
        framer = protocol.Framer()
        while True:
            data = await reader.read(_READ_SIZE)
            if not data:
                if at_end is not None:
                    at_end()
                return
            await dispatch(framer.feed(data))

    # ------------------------------------------------------------------ client → backend

    def client_closed(self) -> None:
        if self.backend_writer.can_write_eof():
            self.backend_writer.write_eof()

    async def from_client(self, messages: list[bytes]) -> None:
        """The client's messages of one read: each to its handle_<message>, or on as it came."""
        handlers = self._client_handlers
        for raw in messages:
            handler = handlers.get(raw[:1])
            if handler is None:
                self.to_backend += raw
            else:
                await handler(raw)
        await self.send_to_backend()

    async def send_to_backend(self) -> None:
        if self.to_backend:
            self.backend_writer.write(self.to_backend)
            self.to_backend = bytearray()
            await self.backend_writer.drain()

    async def handle_query(self, raw: bytes) -> None:
        sql = payload_of(raw)[:-1].decode("utf-8")
        self.transaction_sql.append(sql)
        too_large = check_size(len(raw) - 6)
        if too_large is not None:
            self.log_statement(sql, "simple", too_large.message)
            sql, has_s3_copy = refusal_sql(too_large), False
        else:
            self.refused = []
            client_sql = sql
            sql, has_s3_copy = self.translate_query(sql)
            self.log_statement(client_sql, "simple", "; ".join(self.refused) or None)
        self.sent_sync()
        self.to_backend += protocol.query(sql)
        if has_s3_copy:
            await self.hold_until_copy_done()

    def translate_query(self, sql: str) -> tuple[str, bool]:
        """A simple Query's SQL for PostgreSQL, and whether it holds a COPY from S3.

        Each COPY from S3 is preceded by its target's catalog query, answered in-band."""
        if "s3://" not in sql.lower() or not any(is_s3_copy(s) for s in split_statements(sql)):
            statements = split_statements(sql)
            refusals = [check_statement(statement) for statement in statements]
            if not any(refusals) and not self.truncates_in_block(statements):
                return self.rewrite(sql), False
            parts = []
            in_block = self.transaction_status == TransactionStatus.IN_BLOCK
            for statement, refusal in zip(statements, refusals):
                in_block = _in_block_after(statement, in_block)
                if refusal is not None:
                    self.refused.append(refusal.message)
                    parts.append(refusal_sql(refusal, statement))
                    continue
                if in_block and _is_truncate(statement):
                    parts.append("COMMIT")  # Redshift's TRUNCATE commits the open block
                    in_block = False
                parts.append(
                    self.rewrite(statement) if len(statements) == 1 else rewrite_statement(statement)
                )
            return ";\n".join(parts), False
        parts = []
        has_s3_copy = False
        for statement in split_statements(sql):
            if not is_s3_copy(statement):
                refusal = check_statement(statement)
                if refusal is not None:
                    self.refused.append(refusal.message)
                parts.append(refusal_sql(refusal, statement) if refusal else rewrite_statement(statement))
                continue
            postgres_sql, spec = translate_copy(statement)
            if spec is not None:
                self.pending.append(PendingCopy(spec))
                has_s3_copy = True
                parts.append(copy_target_query(spec))  # answered in-band, kept from the client
            parts.append(postgres_sql)
        return ";\n".join(parts), has_s3_copy

    def rewrite(self, sql: str) -> str:
        """Redshift SQL → PostgreSQL SQL; a lone LOCK outside a transaction block holds nothing."""
        postgres_sql = rewrite_statement(sql)
        if self.transaction_status == TransactionStatus.IDLE and is_lock(sql):
            return lock_outside_transaction(postgres_sql)
        return postgres_sql

    def truncates_in_block(self, statements: list[str]) -> bool:
        """Whether one of these statements is a TRUNCATE that would run inside a transaction block."""
        in_block = self.transaction_status == TransactionStatus.IN_BLOCK
        for statement in statements:
            in_block = _in_block_after(statement, in_block)
            if in_block and _is_truncate(statement):
                return True
        return False

    def log_statement(self, sql: str, protocol_name: str, refused: str | None = None) -> None:
        if self.statement_log is not None:
            self.statement_log.record(
                sql,
                user=self.user,
                application=self.application,
                protocol=protocol_name,
                session=self.backend_pid,
                refused=refused,
            )

    async def handle_parse(self, raw: bytes) -> None:
        payload = payload_of(raw)
        name, pos = cstring(payload, 0)
        sql, pos = cstring(payload, pos)
        sql = sql.decode("utf-8")
        self.statements.pop(name, None)
        self.statement_sql[name] = sql
        spec = None
        refusal = check_size(len(sql.encode("utf-8")))
        if refusal is None and not ("s3://" in sql.lower() and is_s3_copy(sql)):
            refusal = check_statement(sql)
        self.log_statement(sql, "extended", refusal.message if refusal else None)
        self.truncate_statements.discard(name)
        if refusal is not None:
            sql = refusal_sql(refusal, sql)
        elif "s3://" in sql.lower() and is_s3_copy(sql):
            sql, spec = translate_copy(sql)
            if spec is not None:
                self.statements[name] = spec
        else:
            if _is_truncate(sql):
                self.truncate_statements.add(name)
                if not self.batch_open:
                    await self.commit_open_block()
            sql = self.rewrite(sql)
        if spec is not None and not self.batch_open:
            await self.ask_copy_target(spec)
        self.batch_open = True
        self.to_backend += protocol.parse(name, sql, payload[pos:])

    async def handle_bind(self, raw: bytes) -> None:
        payload = payload_of(raw)
        portal, pos = cstring(payload, 0)
        statement, _ = cstring(payload, pos)
        self.portal_sql[portal] = self.statement_sql.get(statement)
        if statement in self.truncate_statements and not self.batch_open:
            await self.commit_open_block()  # a cached TRUNCATE run again inside a block
        spec = self.statements.get(statement)
        if spec is not None:
            self.portals[portal] = spec
            if not self.batch_open:  # a cached statement run again: the table may have changed
                await self.ask_copy_target(spec)
        else:
            self.portals.pop(portal, None)
        self.batch_open = True
        self.to_backend += raw

    async def handle_execute(self, raw: bytes) -> None:
        portal, _ = cstring(payload_of(raw), 0)
        sql = self.portal_sql.get(portal)
        if sql is not None:
            self.transaction_sql.append(sql)
        self.batch_open = True
        self.to_backend += raw
        spec = self.portals.get(portal)
        if spec is not None:
            self.pending.append(PendingCopy(spec, self.targets.get(id(spec))))
            await self.hold_until_copy_done()

    async def handle_describe(self, raw: bytes) -> None:
        self.batch_open = True
        self.to_backend += raw

    async def handle_close(self, raw: bytes) -> None:
        payload = payload_of(raw)
        which, name = payload[:1], payload[1:-1]
        (self.statements if which == b"S" else self.portals).pop(name, None)
        (self.statement_sql if which == b"S" else self.portal_sql).pop(name, None)
        self.batch_open = True
        self.to_backend += raw

    async def handle_sync(self, raw: bytes) -> None:
        self.sent_sync()
        self.to_backend += raw

    def sent_sync(self) -> None:
        self.outstanding += 1
        self.idle.clear()
        self.batch_open = False

    async def hold_until_copy_done(self) -> None:
        """Send what came before, then forward nothing until the S3 COPY has ended."""
        self.copy_idle.clear()
        await self.send_to_backend()
        await self.copy_idle.wait()

    async def run_injected(self, sql: str) -> list:
        """Run `sql` in the client's session while it is idle; the answer is ours, not the client's."""
        await self.send_to_backend()
        await self.idle.wait()
        self.injected = asyncio.get_running_loop().create_future()
        self.injected_rows = []
        self.backend_writer.write(protocol.query(sql))
        await self.backend_writer.drain()
        return await self.injected

    async def commit_open_block(self) -> None:
        """Redshift's TRUNCATE commits the transaction it runs in (docs: r_TRUNCATE): the open
        block is committed before the TRUNCATE reaches PostgreSQL, which then runs it on its own."""
        await self.send_to_backend()
        await self.idle.wait()
        if self.transaction_status == TransactionStatus.IN_BLOCK:
            await self.run_injected("COMMIT")

    async def ask_copy_target(self, spec: CopySpec) -> None:
        """Run the target's catalog query in the client's session while it is idle; the answer is ours."""
        rows = await self.run_injected(copy_target_query(spec))
        target = copy_target_from_rows(rows, spec) if rows else None
        if target is not None:
            self.targets[id(spec)] = target
        else:
            self.targets.pop(id(spec), None)

    # ------------------------------------------------------------------ backend → client

    async def from_backend(self, messages: list[bytes]) -> None:
        """The backend's messages of one read: our own catalog answers kept, the rest to
        the client, through its on_<message> where it has one."""
        handlers = self._backend_handlers
        for raw in messages:
            if self.injected is not None:
                self.capture_injected_answer(raw)
                continue
            if self.inband_rows is not None and self.capture_inband_answer(raw):
                continue
            code = raw[:1]
            if code in _RELAYED:
                self.to_client += raw
                continue
            handler = handlers.get(code)
            if handler is None:
                self.to_client += raw
            else:
                await handler(raw)
        await self.send_to_client()

    async def send_to_client(self, drain: bool = True) -> None:
        if self.to_client:
            self.client_writer.write(self.to_client)
            self.to_client = bytearray()
            if drain:
                await self.client_writer.drain()

    def capture_injected_answer(self, raw: bytes) -> None:
        """The answer to ask_copy_target(), not for the client."""
        code = raw[:1]
        if code == Backend.DATA_ROW:
            self.injected_rows.append(protocol.decode_data_row(payload_of(raw)))
        elif code == Backend.ERROR_RESPONSE:
            self.injected_rows = []
        elif code == Backend.READY_FOR_QUERY:
            self.transaction_status = payload_of(raw)[:1]
            self.injected.set_result(self.injected_rows)
            self.injected = None

    def capture_inband_answer(self, raw: bytes) -> bool:
        """A simple Query's own catalog SELECT (translate_query): True when `raw` was part of it."""
        code = raw[:1]
        if code == Backend.DATA_ROW:
            self.inband_rows.append(protocol.decode_data_row(payload_of(raw)))
            return True
        if code == Backend.COMMAND_COMPLETE:
            if self.pending:
                self.pending[0].target = copy_target_from_rows(self.inband_rows, self.pending[0].spec)
            self.inband_rows = None
            return True
        self.inband_rows = None
        return False

    async def on_row_description(self, raw: bytes) -> None:
        if self.pending and COPY_TARGET_MARKER in raw:
            self.inband_rows = []  # the in-band catalog answer starts
            return
        self.to_client += raw

    async def on_ready_for_query(self, raw: bytes) -> None:
        self.outstanding = max(0, self.outstanding - 1)
        if self.outstanding == 0:
            self.idle.set()
        self.transaction_status = payload_of(raw)[:1]
        if self.transaction_status == TransactionStatus.IDLE:
            self.transaction_sql.clear()
        self.to_client += raw

    async def on_parameter_status(self, raw: bytes) -> None:
        name, _ = cstring(payload_of(raw), 0)
        if name == b"server_version":
            raw = protocol.parameter_status(name, REDSHIFT_SERVER_VERSION)
        self.to_client += raw

    async def on_backend_key_data(self, raw: bytes) -> None:
        self.backend_pid = int.from_bytes(payload_of(raw)[:4], "big")
        self.to_client += raw

    async def on_copy_in_response(self, raw: bytes) -> None:
        if not self.pending:  # a client's own COPY FROM STDIN
            self.to_client += raw
            return
        # the backend waits for our rows: what came before goes to the client first
        await self.send_to_client(drain=False)
        copy_session = CopySession(self.user, self.backend_pid, self.backend_writer)
        self.load_failure = await run_s3_copy(
            self.pending.popleft(), copy_session, self.proxy.catalog, self.proxy.s3
        )
        if not self.pending:
            self.copy_idle.set()

    async def on_notice_response(self, raw: bytes) -> None:
        self.to_client += translate_notice(payload_of(raw))

    async def on_error_response(self, raw: bytes) -> None:
        payload = payload_of(raw)
        if self.load_failure is not None:
            self.to_client += self.load_failure
            self.load_failure = None
        elif b"C" + SERIALIZATION_FAILURE.encode() + b"\0" in payload:
            self.to_client += await self.serialization_failure(payload)
        else:
            self.to_client += translate_error(payload)
        self.pending.clear()  # the backend skips the rest: no COPY will start
        self.copy_idle.set()

    async def serialization_failure(self, payload: bytes) -> bytes:
        """PostgreSQL's SQLSTATE 40001 as Redshift's error 1023, naming the table the transaction
        wrote last (0 when none is known, e.g. a #temp table)."""
        fields = protocol.error_fields(payload)
        if fields.get("C") != SERIALIZATION_FAILURE:
            return translate_error(payload)
        table = next(filter(None, map(written_table, reversed(self.transaction_sql))), None)
        table_id = await asyncio.to_thread(self.proxy.catalog.relation_id, table) if table else 0
        violation = serializable_isolation_violation(fields, table_id, self.backend_pid)
        return protocol.error_response_from_fields(violation)


def _is_truncate(sql: str) -> bool:
    sig = significant(tokenize(sql[:200])) if "truncate" in sql[:200].lower() else []
    return bool(sig) and sig[0].is_word("TRUNCATE")


def _in_block_after(statement: str, in_block: bool) -> bool:
    """Whether a transaction block is open once `statement` has started (BEGIN opens one,
    COMMIT/END/ROLLBACK/ABORT close it)."""
    head = statement.lstrip()[:20].upper()
    if head.startswith(("BEGIN", "START TRANSACTION")):
        return True
    if head.startswith(("COMMIT", "END", "ROLLBACK", "ABORT")):
        return False
    return in_block
