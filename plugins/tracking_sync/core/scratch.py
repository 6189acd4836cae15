"""The scratch area: where the export leaves a run's parts for the upload.

(Three things were once all called "staging": this scratch area, the upload to the load prefix in
S3 (tracking_sync.stage) and the Redshift staging table the COPY fills (tracking_sync.load.publish).)

    TRACKING_SYNC_STAGING_URL=file:///var/lib/tracking_sync   one machine (the default form)
    TRACKING_SYNC_STAGING_URL=s3://bucket/staging-prefix      workers that share no disk

The URL has the form of an Airflow ObjectStoragePath, but the area is read and written with
the boto3 client of the aws_default connection (and pathlib for file://): s3fs is not a
dependency of this package, and what the stages need from S3 is exactly boto3's managed
multipart upload, server-side copy and batch delete.

- file://: the export writes the parts into the folder and the upload sends them to S3;
  export and upload must see the same folder (one machine, or a volume every worker mounts).
- s3://: the export spools each part to a local temp file (one part at a time) and puts it
  under the URL's prefix as soon as it is closed; the upload copies it server-side to the
  load prefix. Nothing passes between tasks through a local disk.

A part's place in the area is a key (tracking_sync.core.layout); `url(key)` is what the export's
XCom carries, so the upload finds the part from the URL alone, on any worker.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tracking_sync.core.errors import MissingSetting
from tracking_sync.core.s3 import SCRATCH_SETTING, delete_stale_objects, s3_unreachable_named

SCHEMES = ("file", "s3")


@dataclass(frozen=True)
class ScratchArea:
    """A file:// folder or an s3:// bucket and key prefix (`root`: '' or ending in '/')."""

    scheme: str
    bucket: str  # '' for file://
    root: str  # the folder (file://) or the key prefix (s3://)

    @classmethod
    def parse(cls, url: str) -> ScratchArea:
        """Check a staging URL; a bad one raises MissingSetting naming what is allowed."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise MissingSetting(
                f"{SCRATCH_SETTING}={url!r}: the scheme {scheme or '(none)'!r} is not one of "
                f"{', '.join(s + '://' for s in SCHEMES)}. Use file:///absolute/folder on one "
                "machine, or s3://bucket/prefix when export and upload can run on different "
                "workers (Celery, Kubernetes, MWAA)"
            )
        if scheme == "file":
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
                raise MissingSetting(
                    f"{SCRATCH_SETTING}={url!r} is not a file URL of an absolute folder: write "
                    "file:///absolute/folder (three slashes)"
                )
            return cls("file", "", str(Path(unquote(parts.path))))
        if not parts.netloc:
            raise MissingSetting(f"{SCRATCH_SETTING}={url!r} names no bucket: write s3://bucket/prefix")
        prefix = parts.path.strip("/")
        return cls("s3", parts.netloc, f"{prefix}/" if prefix else "")

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def url(self) -> str:
        if self.is_local:
            return Path(self.root).as_uri()
        return f"s3://{self.bucket}/{self.root}"

    def url_of(self, key: str) -> str:
        if self.is_local:
            return self.path_of(key).as_uri()
        return f"s3://{self.bucket}/{self.root}{key}"

    def path_of(self, key: str) -> Path:
        """The local file of a key (file:// only)."""
        assert self.is_local
        return Path(self.root) / key

    def key_of(self, url: str) -> str:
        """The key of a URL inside this area (url_of's inverse); refuses a URL elsewhere."""
        prefix = self.url.rstrip("/") + "/"
        if not url.startswith(prefix):
            raise MissingSetting(
                f"staged part {url} is not in the scratch area {self.url}: the export and the "
                f"upload ran with different {SCRATCH_SETTING} (or TRACKING_SYNC_STAGING_DIR); give "
                "every worker the same setting, then clear the export task"
            )
        return url[len(prefix) :] if not self.is_local else unquote(url[len(prefix) :])

    # --- operations (s3_client: a boto3 S3 client; unused for file://) -----------------------

    def probe(self, s3_client: Any, name: str) -> None:
        """Write and delete a tiny object: a location the workers cannot write fails here,
        in plan_run, before any data moves."""
        key = ".probe-" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        if not self.is_local:
            with s3_unreachable_named(s3_client, self.bucket, self.root, "probing the scratch area"):
                self._probe(s3_client, key)
        else:
            self._probe(s3_client, key)

    def _probe(self, s3_client: Any, key: str) -> None:
        from botocore.exceptions import ConnectionError as BotocoreConnectionError

        try:
            if self.is_local:
                path = self.path_of(key)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"probe")
                path.unlink()
            else:
                s3_client.put_object(Bucket=self.bucket, Key=self.root + key, Body=b"probe")
                s3_client.delete_object(Bucket=self.bucket, Key=self.root + key)
        except BotocoreConnectionError:
            raise  # unreachable: transient, retried (s3_unreachable_named says where)
        except Exception as error:  # any other failure to write is the same news: not usable
            raise MissingSetting(
                f"the scratch area {self.url} is not writable from this worker ({type(error).__name__}: "
                f"{error}). Set {SCRATCH_SETTING} to a location every worker can write: a local "
                "folder (file:///...) on one machine, or s3://bucket/prefix that the aws_default "
                "connection may write and delete in; nothing has moved yet"
            ) from error

    def remove_tree(self, s3_client: Any, key_prefix: str) -> int:
        """Remove everything under `key_prefix` (ends in '/'); returns how many files/objects."""
        if self.is_local:
            folder = self.path_of(key_prefix)
            if not folder.exists():
                return 0
            count = sum(1 for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder)
            return count
        return delete_stale_objects(s3_client, self.bucket, self.root + key_prefix, keep=set())

    def exists(self, s3_client: Any, key: str) -> bool:
        if self.is_local:
            return self.path_of(key).is_file()
        from botocore.exceptions import ClientError

        try:
            s3_client.head_object(Bucket=self.bucket, Key=self.root + key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, s3_client: Any, key: str) -> None:
        if self.is_local:
            self.path_of(key).unlink(missing_ok=True)
        else:
            s3_client.delete_object(Bucket=self.bucket, Key=self.root + key)
