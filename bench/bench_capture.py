"""Benchmark: a capture batch (tracking_sync.capture.batch.read_changes into zstd parts) against
reading the same changes raw from the slot.

    .venv/bin/python bench/bench_capture.py [--changes 100000] [--rows 10000000] [--repeat 3]

Starts a local PostgreSQL (devstack), loads a base of --rows rows of demo data
(devstack.demo_data: a year of days), creates the capture's slot, then makes N mixed changes to
action spread over every day (half inserts of late rows on every day, 35 % updates, a tenth of
them to query, 15 % deletes of rows spread over the whole table; kinds mixed in transactions of
100 changes). Each measurement peeks the same changes again (peek does not consume), best of
--repeat:
  raw COPY    COPY (select data from pg_logical_slot_peek_binary_changes(...)) TO STDOUT -> /dev/null
  raw binary COPY  the same COPY ... TO STDOUT (FORMAT binary) -> /dev/null: what the capture reads
  raw cursor  the same peek through a psycopg2 named cursor, rows dropped
  capture     read_changes (the peek's binary COPY written into the decoder) into
              tracking_sync.extract.parts.PartWriter (zstd parts, level 1 in zstd's worker
              thread, as the capture writes them), with
              the decoder in use (tracking_sync.capture.decoding: compiled when built)
  capture (python)  the same with the pure-Python decoder (--decoders compiled,python)
  capture zstd L[tN][jK]  the compiled capture with other zstd settings: level L, N worker
              threads, jobs of K KiB, for each of --zstd (LEVEL[:tTHREADS[:jJOB_BYTES]], e.g.
              --zstd=1 is one thread, -1,1:t1:j524288)
Prints each run's wall time and CPU seconds (client = this Python process, backend = the
PostgreSQL backend that decodes) and the peak RSS the capture added (VmHWM after it, reset
before it, minus the RSS before it), then the ratio raw / capture of the best wall times (1.0 =
as fast as raw) against the FASTEST raw reading of the run (and against each), and of the CPU
seconds (steadier on a busy machine), and the load average at the start and the end.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

BASE_ROWS = 10_000_000  # issue 18: the capture measured against a table of 10 M rows
TRANSACTION_CHANGES = 100


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> None:
    """VmHWM back to the current RSS (Linux 4.0+: clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _backend_cpu_seconds(pid: int) -> float:
    """CPU seconds a PostgreSQL backend of this machine has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_changes(connection, changes: int) -> None:
    """`changes` changes spread over every day of action, in transactions of TRANSACTION_CHANGES
    mixing the kinds: 50% inserts (late rows, their times spread over the whole period), 35%
    updates (one in ten changes query), 15% deletes, of ids spread evenly over the table."""
    inserts, updates = changes // 2, changes * 35 // 100
    deletes = changes - inserts - updates
    with connection.cursor() as cursor:
        cursor.execute("set synchronous_commit to on")
        cursor.execute("select min(id), max(id), min(action_time), max(action_time) from action")
        low, high, first, last = cursor.fetchone()
        step = max(1, (high - low) // (updates + deletes + 1))
        span = (last - first).total_seconds()
        targets = [low + step * (i + 1) for i in range(updates + deletes)]
        plan = (
            [("insert", i) for i in range(inserts)]
            + [("update", i) for i in range(updates)]
            + [("delete", i) for i in range(updates, updates + deletes)]
        )
        # interleave kinds so each transaction mixes them
        plan.sort(key=lambda step: (step[1] * 7919 + hash(step[0])) % changes)
        for start in range(0, len(plan), TRANSACTION_CHANGES):
            for kind, i in plan[start : start + TRANSACTION_CHANGES]:
                if kind == "insert":
                    cursor.execute(
                        "insert into action values (%s, %s, md5(%s::text)::uuid::text, 8, "
                        "%s + %s * interval '1 second', 3, 40, true, false, "
                        "'select * from t where id = ' || %s || ' -- ' || md5(%s::text))",
                        (high + 1 + i, 1000 + i % 500, i, first, i * span / inserts, i, i),
                    )
                elif kind == "update":
                    if i % 10 == 0:
                        cursor.execute(
                            "update action set query = query || ' /* v2 */' where id = %s", (targets[i],)
                        )
                    else:
                        cursor.execute(
                            "update action set is_exercise_checked = not is_exercise_checked, "
                            "action_time = action_time + interval '1 day' where id = %s",
                            (targets[i],),
                        )
                else:
                    cursor.execute("delete from action where id = %s", (targets[i],))
            connection.commit()


def main() -> None:
    import psycopg2

    from devstack.demo_data import generate
    from devstack.postgres import LocalPostgres
    from devstack.stack import SOURCE_DATABASE, create_source_schema
    from tracking_sync.capture import decoding
    from tracking_sync.capture.batch import read_changes
    from tracking_sync.capture.changes import CAPTURE_ZSTD_THREADS
    from tracking_sync.capture.slot import PUBLICATION, create_slot, current_lsn, slot_name
    from tracking_sync.core.sql import render_sql
    from tracking_sync.extract.parts import PartWriter

    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=BASE_ROWS, help="rows of action before the changes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--decoders", default="compiled", help="capture decoders to measure, of compiled,python"
    )
    parser.add_argument(
        "--zstd",
        default="",
        help="other zstd settings of the compiled capture to measure: LEVEL[:tTHREADS[:jJOB_BYTES]], comma separated",
    )
    args = parser.parse_args()
    decoders = [name.strip() for name in args.decoders.split(",") if name.strip()]
    zstd_settings = []
    for setting in filter(None, (item.strip() for item in args.zstd.split(","))):
        level, _, rest = setting.partition(":t")
        threads, _, job = rest.partition(":j")
        zstd_settings.append({"level": int(level), "threads": int(threads or 0), "job_bytes": int(job or 0)})
    print(f"load average at the start: {load_average()}", flush=True)

    postgres = LocalPostgres().start()
    try:
        dsn = postgres.create_database(SOURCE_DATABASE)
        create_source_schema(dsn)
        started = time.perf_counter()
        generate(dsn, rows=args.rows)
        print(f"loaded a base of {args.rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
        connection = psycopg2.connect(dsn)
        slot = slot_name("bench")
        start_lsn = create_slot(connection, slot).consistent_lsn
        started = time.perf_counter()
        make_changes(connection, args.changes)
        print(f"made {args.changes:,} changes in {time.perf_counter() - started:.1f} s", flush=True)
        upto = current_lsn(connection)
        peek = connection.cursor().mogrify(
            render_sql("postgres/capture/peek_changes.sql"),
            {"slot": slot, "upto_lsn": f"{upto >> 32:X}/{upto & 0xFFFFFFFF:X}", "publication": PUBLICATION},
        )

        def raw_copy() -> str:
            with open("/dev/null", "wb") as sink, connection.cursor() as cursor:
                cursor.copy_expert(f"copy ({peek.decode()}) to stdout", sink)
            connection.rollback()
            return f"{cursor.rowcount} messages"

        def raw_binary_copy() -> str:
            with open("/dev/null", "wb") as sink, connection.cursor() as cursor:
                cursor.copy_expert(f'copy ({peek.decode()}) to stdout with (format "binary")', sink)
            connection.rollback()
            return f"{cursor.rowcount} messages"

        def raw_cursor() -> str:
            count = 0
            with connection.cursor(name="raw") as cursor:
                cursor.itersize = 1000
                cursor.execute(peek)
                for _ in cursor:
                    count += 1
            connection.rollback()
            return f"{count} messages"

        peak_rss: dict[str, int] = {}

        def capture_with(decoder: str, zstd: dict[str, int] | None = None) -> tuple[str, Callable[[], str]]:
            name = f"capture ({decoder})"
            if zstd is not None:
                name = f"capture zstd {zstd['level']}" + (f"t{zstd['threads']}" if zstd["threads"] else "")
                name += f"j{zstd['job_bytes'] // 1024}K" if zstd["job_bytes"] else ""

            def capture() -> str:
                os.environ[decoding.DECODER_VARIABLE] = decoder
                rss_before = _rss_kib("VmRSS")
                _reset_peak_rss()
                with tempfile.TemporaryDirectory() as directory:
                    writer = PartWriter(
                        Path(directory), 512 * 1024 * 1024, **(zstd or {"threads": CAPTURE_ZSTD_THREADS})
                    )
                    result = read_changes(connection, slot, PUBLICATION, start_lsn, upto, writer)
                    parts = writer.close()
                added = _rss_kib("VmHWM") - rss_before
                peak_rss[name] = max(peak_rss.get(name, 0), added)
                compressed = sum(p.bytes for p in parts)
                return (
                    f"{result.rows} rows, {result.transactions} transactions, "
                    f"{result.bytes / 1e6:.1f} MB CSV -> {compressed / 1e6:.2f} MB zstd "
                    f"(ratio {result.bytes / compressed:.2f}), peak RSS +{added / 1024:.1f} MiB"
                )

            return name, capture

        with connection.cursor() as cursor:
            cursor.execute("select pg_backend_pid()")
            (backend,) = cursor.fetchone()
        connection.rollback()
        best: dict[str, float] = {}
        cpu: dict[str, tuple[float, float]] = {}
        for _ in range(args.repeat):
            runs = [("raw COPY", raw_copy), ("raw binary COPY", raw_binary_copy), ("raw cursor", raw_cursor)]
            runs += [capture_with(decoder) for decoder in decoders]
            runs += [capture_with("compiled", zstd) for zstd in zstd_settings]
            for name, run in runs:
                client_before, backend_before = _cpu_seconds(), _backend_cpu_seconds(backend)
                started = time.perf_counter()
                what = run()
                elapsed = time.perf_counter() - started
                client = _cpu_seconds() - client_before
                server = _backend_cpu_seconds(backend) - backend_before
                best[name] = min(best.get(name, elapsed), elapsed)
                if name not in cpu or client + server < sum(cpu[name]):
                    cpu[name] = (client, server)
                print(
                    f"  {name:<22} {elapsed:6.3f} s  cpu client {client:5.2f} s backend {server:5.2f} s  {what}",
                    flush=True,
                )
        print(f"\nbest of {args.repeat}, {args.changes:,} changes, a base of {args.rows:,} rows:")
        for name, elapsed in best.items():
            client, server = cpu[name]
            rss = f"   peak RSS +{peak_rss[name] / 1024:.1f} MiB" if name in peak_rss else ""
            print(
                f"  {name:<22} {elapsed:6.3f} s  {args.changes / elapsed:9,.0f} changes/s   "
                f"cpu client {client:5.2f} s + backend {server:5.2f} s{rss}"
            )
        raws = ("raw COPY", "raw binary COPY", "raw cursor")
        fastest = min(raws, key=best.__getitem__)
        for name in best:
            if name in raws:
                continue
            print(
                f"  ratio fastest raw ({fastest}) / {name}: wall {best[fastest] / best[name]:.2f}, "
                f"cpu {sum(cpu[fastest]) / sum(cpu[name]):.2f}   (goal: wall >= 0.70)"
            )
            for raw in raws:
                print(
                    f"      {raw} / {name}: wall {best[raw] / best[name]:.2f}, "
                    f"cpu {sum(cpu[raw]) / sum(cpu[name]):.2f}"
                )
        print(f"load average at the end: {load_average()}")
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()
