"""A real S3 HTTP API on 127.0.0.1: moto's server, in a process of its own.

It runs as a child process (not a thread of the caller) so that an upload
measured by a benchmark or a test does not share a GIL with the server.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field

from devstack.net import free_port, stop_process, wait_for_port

ACCESS_KEY_ID = "stack-access-key"
SECRET_ACCESS_KEY = "stack-secret-key-never-logged"
REGION = "us-east-1"


@dataclass
class LocalS3:
    bucket: str = "tracking-staging"
    port: int = 0
    host: str = "127.0.0.1"
    region: str = REGION
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def start(self) -> LocalS3:
        if not self.port:
            self.port = free_port()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "devstack.s3", "--host", self.host, "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        wait_for_port(self.host, self.port, timeout=20)
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def refuse_keys(self, refused: bool) -> None:
        """Turn moto's own access check on (refused) or off: on, it knows no access key (the
        stack's is not one of its IAM users'), so every request is refused with
        InvalidAccessKeyId, as S3 refuses a key deactivated or rotated away; the objects stay.
        Its documented switch: POST /moto-api/reset-auth with the number of requests to let
        through first (0: none; inf: all, the default)."""
        import urllib.request

        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=b"0" if refused else b"inf",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None


def serve(host: str, port: int) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="moto's S3 server on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.host, args.port)
