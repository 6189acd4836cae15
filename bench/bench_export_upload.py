"""Benchmark: the export and upload stages against their raw limits, with peak RSS.

    .venv/bin/python bench/bench_export_upload.py [--rows 2000000]

Starts a local PostgreSQL and S3 (devstack), generates N demo rows, then measures, each
in a child process of its own (so its peak RSS is its own):
  export   tracking_sync.extract.export.export_table (full table)  vs  raw COPY TO STDOUT -> /dev/null
  upload   tracking_sync.stage.upload.upload_export of those parts  vs  plain boto3 upload_file
Prints a table. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raw_export(dsn: str, same_select: bool, out) -> None:
    """COPY TO STDOUT -> /dev/null: of the table, or of the export stage's own SELECT."""
    import psycopg2

    from tracking_sync.core.plan import RunSlice
    from tracking_sync.core.tables import ACTION
    from tracking_sync.extract.export import copy_statement

    connection = psycopg2.connect(dsn)
    with connection.cursor() as cursor:
        cursor.execute("set timezone to 'UTC'")
        statement = (
            copy_statement(cursor, ACTION, RunSlice(True))
            if same_select
            else "copy action to stdout with (format csv)"
        )
    start = time.perf_counter()
    with open("/dev/null", "wb") as sink, connection.cursor() as cursor:
        cursor.copy_expert(statement, sink)
        rows = cursor.rowcount
    name = "raw, same SELECT" if same_select else "raw export"
    out.put((name, time.perf_counter() - start, rows, 0, _peak_rss_mb()))


def stage_export(dsn: str, directory: str, out) -> None:
    import psycopg2

    from tracking_sync.core.plan import RunSlice
    from tracking_sync.core.tables import ACTION
    from tracking_sync.extract.export import export_table

    connection = psycopg2.connect(dsn)
    start = time.perf_counter()
    result = export_table(connection, ACTION, RunSlice(True), Path(directory), 512 * 2**20)
    out.put(("export stage", time.perf_counter() - start, result.rows, result.bytes, _peak_rss_mb()))


def raw_upload(endpoint: str, bucket: str, files: list[str], out) -> None:
    import boto3

    from devstack.s3 import LocalS3

    s3 = LocalS3(port=int(endpoint.rsplit(":", 1)[1]))
    client = s3.client()
    size = sum(Path(f).stat().st_size for f in files)
    start = time.perf_counter()
    for i, path in enumerate(files):
        client.upload_file(path, bucket, f"bench-raw/part-{i}")
    del boto3
    out.put(("raw boto3 upload", time.perf_counter() - start, 0, size, _peak_rss_mb()))


def stage_upload(endpoint: str, bucket: str, staging: str, summary: dict, out) -> None:
    from devstack.s3 import LocalS3
    from tracking_sync.core.settings import Settings
    from tracking_sync.stage.upload import upload_export

    client = LocalS3(port=int(endpoint.rsplit(":", 1)[1])).client()
    settings = Settings(bucket=bucket, prefix="bench", scratch_dir=Path(staging))
    start = time.perf_counter()
    result = upload_export(client, settings, summary)
    out.put(("upload stage", time.perf_counter() - start, 0, result["bytes"], _peak_rss_mb()))


def _median(name: str, measured: list[tuple]) -> tuple:
    """The run with the median time (its rows, bytes, RSS), and the worst peak RSS."""
    ordered = sorted(measured, key=lambda r: r[1])
    _, seconds, rows, size, _ = ordered[len(ordered) // 2]
    return (name, seconds, rows, size, max(r[4] for r in measured))


def in_child(target, *args):
    queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (median shown)")
    args = parser.parse_args()

    from devstack import demo_data
    from devstack.stack import Stack
    from tracking_sync.core.layout import run_prefix
    from tracking_sync.core.plan import RunSlice
    from tracking_sync.core.settings import Settings
    from tracking_sync.extract.export import describe_export
    from tracking_sync.extract.parts import ExportResult, Part

    stack = Stack(with_redshift=False).start()
    try:
        t = time.perf_counter()
        demo_data.generate(stack.source_dsn, rows=args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t:.1f} s", flush=True)
        work = Path(tempfile.mkdtemp(prefix="bench-"))
        settings = Settings(bucket=stack.s3.bucket, prefix="bench", scratch_dir=work)
        directory = settings.scratch_dir / run_prefix(settings, "action", RunSlice(True))

        # Each measurement runs --repeat times, interleaved, in a fresh child process;
        # the machine is shared and noisy, so the medians are what is reported.
        runs: dict[str, list[tuple]] = {}
        for _ in range(args.repeat):
            for result in (
                in_child(raw_export, stack.source_dsn, False),
                in_child(raw_export, stack.source_dsn, True),
                in_child(stage_export, stack.source_dsn, str(directory)),
            ):
                runs.setdefault(result[0], []).append(result)
        parts = sorted(directory.glob("part-*.csv.zst"))
        export = ExportResult("action", tuple(Part(p.name, 0, p.stat().st_size, 0) for p in parts))
        summary = describe_export(settings, RunSlice(True), export)
        # The upload stage deletes its local parts once they are in S3: keep hard links
        # of them aside and put them back before each round.
        kept = work / "kept"
        kept.mkdir()
        for part in parts:
            os.link(part, kept / part.name)
        for _ in range(args.repeat):
            for part in parts:
                if not part.exists():
                    os.link(kept / part.name, part)
            for result in (
                in_child(raw_upload, stack.s3.endpoint_url, stack.s3.bucket, [str(p) for p in parts]),
                in_child(stage_upload, stack.s3.endpoint_url, stack.s3.bucket, str(work), summary),
            ):
                runs.setdefault(result[0], []).append(result)
        results = [_median(name, measured) for name, measured in runs.items()]
    finally:
        stack.stop()

    by_name = {r[0]: r for r in results}
    print(f"\nmedian of {args.repeat} runs each; peak RSS is the worst run's")
    print(f"\n{'stage':<18} {'seconds':>8} {'rows/s':>12} {'MB/s':>8} {'peak RSS MB':>12}")
    for name, seconds, rows, size, rss in results:
        rate = f"{rows / seconds:,.0f}" if rows else "-"
        mbs = f"{size / seconds / 1e6:.0f}" if size else "-"
        print(f"{name:<18} {seconds:>8.2f} {rate:>12} {mbs:>8} {rss:>12.0f}")
    export_ratio = by_name["raw export"][1] / by_name["export stage"][1]
    upload_ratio = by_name["raw boto3 upload"][1] / by_name["upload stage"][1]
    same_ratio = by_name["raw, same SELECT"][1] / by_name["export stage"][1]
    print(
        f"\nexport stage / raw COPY of the table: {export_ratio:.2f}   / raw COPY of the "
        f"same SELECT: {same_ratio:.2f}"
    )
    print(f"upload stage / raw boto3: {upload_ratio:.2f}   (goal >= 0.8 each, peak RSS < 100 MB)")


if __name__ == "__main__":
    main()
