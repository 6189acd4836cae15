"""The listening server: Redshift's face in front of a PostgreSQL backend.

Each client connection gets the startup handshake here, then a backend
connection of its own and a session.Session that relays its messages:

- SSLRequest and GSSENCRequest are answered 'N' (the driver then goes on in clear);
- a CancelRequest is forwarded as is: BackendKeyData passed unchanged, so it
  reaches the client's backend;
- startup parameters PostgreSQL does not know (the driver's
  client_protocol_version, driver_version, os_version, ...) are dropped, since
  PostgreSQL would refuse the connection over them; every session runs
  SERIALIZABLE, as on Redshift.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from devstack.redshift import protocol
from devstack.redshift.catalog import CatalogConnection
from devstack.redshift.copy import S3Clients
from devstack.redshift.session import Session
from devstack.redshift.statement_log import StatementLog

log = logging.getLogger("devstack.redshift")

# what a StartupMessage carries besides settings
_STARTUP_KEYS = {"user", "database", "options", "replication"}
# settings of every backend session: Redshift runs every transaction SERIALIZABLE
# (docs: c_serial_isolation); two conflicting concurrent transactions make one fail
# with error 1023 (errors.serializable_isolation_violation)
REDSHIFT_SESSION_SETTINGS = {b"default_transaction_isolation": b"serializable"}


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


class RedshiftProxy:
    """The listening server: one Session per client connection."""

    def __init__(self, config: BackendConfig):
        self.config = config
        self.catalog = CatalogConnection(
            config.host, config.port, config.user, config.password, config.database
        )
        self.s3 = S3Clients(
            config.s3_endpoint_url, config.s3_access_key_id, config.s3_secret_access_key, config.s3_region
        )
        self.setting_names: set[str] = set()
        self.sessions: set[asyncio.Task] = set()
        # every statement received, for the tests' grammar gate ($DEVSTACK_REDSHIFT_STATEMENT_LOG)
        self.statement_log = StatementLog.from_environment()

    async def serve(
        self, host: str, port: int, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None
    ) -> None:
        self.setting_names = await asyncio.to_thread(self.catalog.setting_names)
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
            session = await self.handshake(reader, writer)
            if session is not None:
                await session.run()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()
            self.sessions.discard(task)

    async def handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Session | None:
        """The startup phase: a Session connected to its backend, or None (a cancel, a refusal)."""
        while True:
            code, packet = await protocol.read_startup_packet(reader)
            if code in (protocol.SSL_REQUEST, protocol.GSSENC_REQUEST):
                writer.write(b"N")
                await writer.drain()
                continue
            if code == protocol.CANCEL_REQUEST:
                await self.forward_cancel(packet)
                return None
            if code != protocol.PROTOCOL_3:
                writer.write(protocol.error_response("unsupported frontend protocol", "0A000"))
                await writer.drain()
                return None
            break
        client_parameters = protocol.startup_parameters(packet)
        parameters = self.backend_parameters(client_parameters)
        backend_reader, backend_writer = await asyncio.open_connection(self.config.host, self.config.port)
        backend_writer.write(protocol.startup_message(parameters))
        await backend_writer.drain()
        user = parameters.get(b"user", b"").decode()
        application = client_parameters.get(b"application_name", b"").decode("utf-8", "replace")
        return Session(self, reader, writer, backend_reader, backend_writer, user, application)

    def backend_parameters(self, client_parameters: dict[bytes, bytes]) -> dict[bytes, bytes]:
        """The client's startup parameters that PostgreSQL knows, and Redshift's session settings."""
        known = {
            k: v
            for k, v in client_parameters.items()
            if k.decode().lower() in _STARTUP_KEYS or k.decode().lower() in self.setting_names
        }
        return {**known, **REDSHIFT_SESSION_SETTINGS}

    async def forward_cancel(self, packet: bytes) -> None:
        _, writer = await asyncio.open_connection(self.config.host, self.config.port)
        writer.write(packet)
        await writer.drain()
        writer.close()
