"""The files a COPY reads: S3 clients, key prefix or manifest, decompression, records.

docs: r_COPY (a source is a key prefix), loading-data-files-using-manifest,
copy-parameters-file-compression, copy-parameters-data-format.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import threading

from devstack.redshift.copy.errors import CopyLoadError
from devstack.redshift.copy.statement import CopySpec

csv.field_size_limit(2**31 - 1)


class S3Clients:
    """boto3 S3 clients by credentials and region; built once, used from worker threads.

    The stand-in's S3 is local: an IAM role (no STS here) loads with the
    stand-in's own keys; access keys load with themselves, so wrong keys fail as
    they would on AWS.
    """

    def __init__(
        self, endpoint_url: str, access_key_id: str, secret_access_key: str, default_region: str
    ) -> None:
        self._endpoint_url = endpoint_url
        self._own_keys = (access_key_id, secret_access_key, None)
        self._default_region = default_region
        self._clients: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def for_spec(self, spec: CopySpec):
        import boto3
        from botocore.config import Config

        if spec.iam_role:
            keys = self._own_keys
        else:
            keys = (spec.access_key_id, spec.secret_access_key, spec.session_token)
        region = spec.region or self._default_region
        with self._lock:
            client = self._clients.get(keys + (region,))
            if client is None:
                client = boto3.client(
                    "s3",
                    endpoint_url=self._endpoint_url,
                    region_name=region,
                    aws_access_key_id=keys[0],
                    aws_secret_access_key=keys[1],
                    aws_session_token=keys[2],
                    config=Config(retries={"max_attempts": 2}),
                )
                self._clients[keys + (region,)] = client
            return client


def split_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key) of s3://bucket/key."""
    bucket, _, key = url[5:].partition("/")
    return bucket, key


def list_source_files(client, spec: CopySpec) -> list[str]:
    """The s3:// URLs to load: the manifest's entries, or every key under the prefix."""
    if spec.manifest:
        return read_manifest(client, spec.source)
    bucket, key = split_s3_url(spec.source)
    urls = []
    paginator = client.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/") and obj["Size"] == 0:
                    continue
                urls.append(f"s3://{bucket}/{obj['Key']}")
    except client.exceptions.NoSuchBucket:
        raise CopyLoadError(f"The specified S3 bucket '{bucket}' does not exist") from None
    if not urls:
        raise CopyLoadError(f"The specified S3 prefix '{key}' does not exist")
    return sorted(urls)


def read_manifest(client, manifest_url: str) -> list[str]:
    """The manifest's URLs that exist; a missing `mandatory` one fails the COPY, so does none at all."""
    bucket, key = split_s3_url(manifest_url)
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        raise CopyLoadError(f"Manifest file {manifest_url} does not exist") from None
    except Exception as exc:
        raise CopyLoadError(f"Problem reading manifest file {manifest_url}: {exc}") from exc
    try:
        entries = json.loads(body)["entries"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CopyLoadError(f"Manifest file {manifest_url} is not valid: {exc}") from exc
    urls = []
    for entry in entries:
        url = entry["url"]
        mandatory = bool(entry.get("mandatory", False))  # docs: false by default
        e_bucket, e_key = split_s3_url(url)
        try:
            client.head_object(Bucket=e_bucket, Key=e_key)
        except Exception:
            if mandatory:
                raise CopyLoadError(
                    f"Manifest file is missing a mandatory entry: {url} does not exist"
                ) from None
            continue
        urls.append(url)
    if not urls:
        raise CopyLoadError(f"No files found to load from manifest {manifest_url}")
    return urls


class _ReadableStream(io.RawIOBase):
    """An S3 StreamingBody as a raw binary stream (for TextIOWrapper and decompressors)."""

    def __init__(self, body):
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_source_file(client, url: str, compression: str | None) -> io.BufferedIOBase:
    """The object's bytes, decompressed as the COPY says (GZIP, BZIP2, ZSTD), streamed."""
    bucket, key = split_s3_url(url)
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    raw = io.BufferedReader(_ReadableStream(body), buffer_size=1 << 20)
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw)
    if compression == "bzip2":
        return bz2.BZ2File(raw)
    if compression == "zstd":
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw), buffer_size=1 << 20)
    return raw


class SourceRecords:
    """The records (lists of raw fields) of one source file, after IGNOREHEADER.

    Bytes that are not UTF-8 come through as surrogates (surrogateescape) and set
    `invalid_utf8`, so the load can reject the row or apply ACCEPTINVCHARS
    without decoding every field twice. `line_num` is the reader's line count, for
    stl_load_errors.line_number (a quoted value may span lines).
    """

    def __init__(self, client, url: str, spec: CopySpec) -> None:
        # the handler stays registered for good: it holds a flag, not this object
        # (whose reader holds the S3 stream)
        self._invalid_utf8 = invalid_utf8 = [False]

        def on_bad_bytes(exc: UnicodeDecodeError):
            invalid_utf8[0] = True
            return codecs.lookup_error("surrogateescape")(exc)

        error_name = f"rs_copy_{id(invalid_utf8)}"
        codecs.register_error(error_name, on_bad_bytes)
        stream = open_source_file(client, url, spec.compression)
        text = io.TextIOWrapper(stream, encoding="utf-8", errors=error_name, newline="")
        if spec.csv:
            self._reader = csv.reader(text, delimiter=spec.delimiter, quotechar=spec.quote, strict=False)
        else:
            self._reader = csv.reader(
                text,
                delimiter=spec.delimiter,
                quoting=csv.QUOTE_NONE,
                escapechar="\\" if spec.escape else None,
            )
        for _ in range(spec.ignoreheader):  # docs: IGNOREHEADER applies to each file
            if next(self._reader, None) is None:
                break

    @property
    def invalid_utf8(self) -> bool:
        """Whether a byte that is not UTF-8 has been read so far."""
        return self._invalid_utf8[0]

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    def __iter__(self):
        return self._reader
