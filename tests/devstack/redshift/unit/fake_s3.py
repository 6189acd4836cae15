"""An in-memory stand-in for the few boto3 S3 client calls COPY makes (no moto, no server)."""

from __future__ import annotations

import gzip
import io


class _Exceptions:
    class NoSuchKey(Exception):
        pass

    class NoSuchBucket(Exception):
        pass


class _Paginator:
    def __init__(self, objects: dict[str, bytes]):
        self._objects = objects

    def paginate(self, Bucket: str, Prefix: str):  # noqa: N803 — boto3's argument names
        keys = sorted(k for k in self._objects if k.startswith(f"{Bucket}/{Prefix}"))
        contents = [{"Key": k.split("/", 1)[1], "Size": len(self._objects[k])} for k in keys]
        return [{"Contents": contents}] if contents else [{}]


class FakeS3Client:
    exceptions = _Exceptions

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}  # "bucket/key" → body

    def put(self, url: str, body: bytes | str, compression: str | None = None) -> str:
        data = body.encode() if isinstance(body, str) else body
        if compression == "gzip":
            data = gzip.compress(data)
        self.objects[url.removeprefix("s3://")] = data
        return url

    def get_paginator(self, name: str) -> _Paginator:
        assert name == "list_objects_v2"
        return _Paginator(self.objects)

    def get_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803
        try:
            return {"Body": io.BytesIO(self.objects[f"{Bucket}/{Key}"])}
        except KeyError:
            raise self.exceptions.NoSuchKey(Key) from None

    def head_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803
        if f"{Bucket}/{Key}" not in self.objects:
            raise self.exceptions.NoSuchKey(Key)
        return {}
