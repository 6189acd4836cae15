"""Run the local Redshift.

Alone (starts its own PostgreSQL and S3 unless given ones), until Ctrl-C:

    python -m devstack.redshift [--port 5439] [--backend-dsn postgresql://...]
                                [--s3-endpoint-url http://127.0.0.1:PORT]

The proxy process itself (what LocalRedshift.start() launches; the backend DSN
comes from $DEVSTACK_REDSHIFT_BACKEND_DSN so the password is not on a command line):

    python -m devstack.redshift serve --port N --s3-endpoint-url URL
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from urllib.parse import unquote, urlparse

from devstack.postgres import PostgresServer
from devstack.redshift import BACKEND_DSN_ENV


class _DsnBackend(PostgresServer):
    """An existing PostgreSQL given by URL, with the surface LocalRedshift needs."""

    def __init__(self, dsn: str):
        url = urlparse(dsn)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 5432
        self.user = unquote(url.username or "postgres")
        self.password = unquote(url.password or "")


def serve(host: str, port: int, s3_endpoint_url: str) -> None:
    from devstack.redshift.server import BackendConfig, RedshiftProxy

    dsn = os.environ[BACKEND_DSN_ENV]
    url = urlparse(dsn)
    config = BackendConfig(
        host=url.hostname or "127.0.0.1",
        port=url.port or 5432,
        user=unquote(url.username or ""),
        password=unquote(url.password or ""),
        database=url.path.lstrip("/") or "dev",
        s3_endpoint_url=s3_endpoint_url,
    )
    proxy = RedshiftProxy(config)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await proxy.serve(host, port, stop=stop)

    asyncio.run(main())


def run_alone(args: argparse.Namespace) -> None:
    from devstack.redshift import LocalRedshift

    started = []
    if args.backend_dsn:
        backend = _DsnBackend(args.backend_dsn)
    else:
        from devstack.postgres import LocalPostgres

        backend = LocalPostgres().start()
        started.append(backend)
    s3_endpoint_url = args.s3_endpoint_url
    if not s3_endpoint_url:
        from devstack.s3 import LocalS3

        s3 = LocalS3().start()
        started.append(s3)
        s3_endpoint_url = s3.endpoint_url
    redshift = LocalRedshift(backend=backend, s3_endpoint_url=s3_endpoint_url, port=args.port)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    try:
        redshift.start()
        print(f"Local Redshift on {redshift.host}:{redshift.port}, database {redshift.database}")
        print(f"  psql/psycopg2: {redshift.dsn()}")
        print(f"  redshift_connector.connect(**{redshift.connect_kwargs()!r})")
        print(f"  S3 endpoint: {s3_endpoint_url}")
        for name, value in redshift.env().items():
            print(f"  export {name}='{value}'")
        print("Ctrl-C to stop.", flush=True)
        stopped.wait()
    finally:
        redshift.stop()
        for service in reversed(started):
            service.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.redshift",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("mode", nargs="?", choices=["serve"], help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--backend-dsn", help="an existing PostgreSQL (superuser, md5 or trust)")
    parser.add_argument("--s3-endpoint-url", help="an existing S3 endpoint (moto)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("DEVSTACK_REDSHIFT_LOG_LEVEL", "INFO"),
        format="%(asctime)s redshift-stand-in %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if args.mode == "serve":
        if not args.port or not args.s3_endpoint_url:
            parser.error("serve needs --port and --s3-endpoint-url")
        serve(args.host, args.port, args.s3_endpoint_url)
    else:
        run_alone(args)


if __name__ == "__main__":
    main()
