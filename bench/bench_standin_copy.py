"""Benchmark: the Redshift stand-in's COPY against PostgreSQL's own COPY FROM of the same parts.

    .venv/bin/python bench/bench_standin_copy.py [--rows 2000000] [--repeat 3]

Starts the local stack (PostgreSQL, S3, the stand-in), generates N demo rows, exports
them with the pipeline's exporter (tracking_sync.extract.export.export_table: zstd CSV parts)
and uploads them with its upload stage (parts + manifest in the local S3). Then, --repeat
times, interleaved, into two identical empty staging tables made by the pipeline's own
DDL through the stand-in (so both carry the compat catalog's byte-length CHECKs):
  postgres  PostgreSQL's COPY FROM STDIN (FORMAT csv, NULL '\\N') of the same parts,
            decompressed on the fly, psycopg2 copy_expert straight to the backend
  stand-in  COPY ... FROM 's3://.../manifest.json' with the pipeline's options
            (MANIFEST FORMAT CSV ZSTD NULL AS '\\N' TIMEFORMAT 'auto') through
            redshift_connector, as S3ToRedshiftOperator sends it
Prints the medians (rows/s) and the ratio stand-in / postgres, of the medians and the
median of each interleaved pair's (the steadier on a shared machine). Not part of the
test suite.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

SCHEMA = "bench_copy"


def postgres_copy(backend_dsn: str, table: str, parts: list[Path]) -> tuple[float, int]:
    """PostgreSQL's own COPY FROM STDIN of the parts, decompressed as they stream."""
    import psycopg2
    import zstandard

    connection = psycopg2.connect(backend_dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"truncate {SCHEMA}.{table}")
            connection.commit()
            rows = 0
            start = time.perf_counter()
            for part in parts:
                with open(part, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as csv:
                    cursor.copy_expert(
                        f"copy {SCHEMA}.{table} from stdin with (format csv, null '\\N')",
                        csv,
                        size=1 << 20,
                    )
                    rows += cursor.rowcount
            connection.commit()
            return time.perf_counter() - start, rows
    finally:
        connection.close()


def standin_copy(connect_kwargs: dict, table: str, manifest_uri: str, keys: str) -> tuple[float, int]:
    """The stand-in's COPY from S3 with the pipeline's options, through redshift_connector."""
    import redshift_connector

    from tracking_sync.load.copy import COPY_OPTIONS

    connection = redshift_connector.connect(**connect_kwargs)
    try:
        cursor = connection.cursor()
        cursor.execute(f"truncate {SCHEMA}.{table}")
        connection.commit()
        start = time.perf_counter()
        cursor.execute(f"copy {SCHEMA}.{table} from '{manifest_uri}' {keys} {' '.join(COPY_OPTIONS)}")
        connection.commit()
        seconds = time.perf_counter() - start
        cursor.execute(f"select count(*) from {SCHEMA}.{table}")
        return seconds, cursor.fetchone()[0]
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (median shown)")
    parser.add_argument(
        "--part-mb", type=int, default=512, help="part size of the export (as TRACKING_SYNC_PART_MB)"
    )
    args = parser.parse_args()

    import psycopg2

    from devstack import demo_data
    from devstack.stack import Stack
    from tracking_sync.core.layout import run_prefix
    from tracking_sync.core.plan import RunSlice
    from tracking_sync.core.settings import MIB, Settings
    from tracking_sync.core.tables import ACTION
    from tracking_sync.extract.export import describe_export, export_table
    from tracking_sync.load.schema import action_staging_statements
    from tracking_sync.stage.upload import upload_export

    stack = Stack().start()
    work = None
    try:
        started = time.perf_counter()
        demo_data.generate(stack.source_dsn, rows=args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)

        work = Path(tempfile.mkdtemp(prefix="bench-copy-"))
        settings = Settings(
            bucket=stack.s3.bucket, prefix="bench-copy", scratch_dir=work, part_bytes=args.part_mb * MIB
        )
        run_slice = RunSlice(True)
        directory = settings.scratch_dir / run_prefix(settings, "action", run_slice)
        source = psycopg2.connect(stack.source_dsn)
        try:
            export = export_table(source, ACTION, run_slice, directory, settings.part_bytes)
        finally:
            source.close()
        parts = sorted(directory.glob("part-*"))
        kept = work / "kept"  # the upload removes its local parts; PostgreSQL's COPY reads these
        kept.mkdir()
        for part in parts:
            (kept / part.name).hardlink_to(part)
        parts = sorted(kept.iterdir())
        upload = upload_export(stack.s3.client(), settings, describe_export(settings, run_slice, export))
        print(
            f"exported and uploaded {upload['rows']:,} rows in {len(parts)} part(s), "
            f"{upload['bytes'] / 1e6:.0f} MB zstd",
            flush=True,
        )

        redshift = stack.redshift
        admin = psycopg2.connect(redshift.dsn())
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"drop schema if exists {SCHEMA} cascade")
            cursor.execute(f"create schema {SCHEMA}")
            for table in ("via_postgres", "via_standin"):
                for statement in action_staging_statements(SCHEMA, table):
                    cursor.execute(statement)
        admin.close()
        backend_dsn = redshift.backend_dsn()
        keys = f"access_key_id '{stack.s3.access_key_id}' secret_access_key '{stack.s3.secret_access_key}'"

        # Interleaved, so that the noise of a shared machine falls on both alike.
        timings: dict[str, list[float]] = {"postgres": [], "stand-in": []}
        for _ in range(args.repeat):
            seconds, rows = postgres_copy(backend_dsn, "via_postgres", parts)
            assert rows == upload["rows"], (rows, upload["rows"])
            timings["postgres"].append(seconds)
            seconds, rows = standin_copy(
                redshift.connect_kwargs(), "via_standin", upload["manifest_uri"], keys
            )
            assert rows == upload["rows"], (rows, upload["rows"])
            timings["stand-in"].append(seconds)
            print(
                f"  postgres {timings['postgres'][-1]:.2f} s   stand-in {timings['stand-in'][-1]:.2f} s",
                flush=True,
            )
    finally:
        stack.stop()
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)

    rows = upload["rows"]
    print(f"\n{rows:,} rows, median of {args.repeat} runs each")
    print(f"{'COPY':<40} {'seconds':>8} {'rows/s':>12}")
    medians = {name: statistics.median(values) for name, values in timings.items()}
    labels = {
        "postgres": "PostgreSQL COPY FROM STDIN (the parts)",
        "stand-in": "stand-in COPY FROM 's3://…manifest'",
    }
    for name, seconds in medians.items():
        print(f"{labels[name]:<40} {seconds:>8.2f} {rows / seconds:>12,.0f}")
    paired = statistics.median(p / s for p, s in zip(timings["postgres"], timings["stand-in"]))
    print(
        f"\nstand-in / PostgreSQL: {medians['postgres'] / medians['stand-in']:.2f} of the medians, "
        f"{paired:.2f} the median of the interleaved pairs   (goal >= 0.5)"
    )


if __name__ == "__main__":
    main()
