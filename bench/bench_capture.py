"""Benchmark: a capture batch (tracking_sync.capture.batch.read_changes into zstd parts) against
reading the same changes raw from the slot.

    .venv/bin/python bench/bench_capture.py [--changes 100000] [--repeat 3]

Starts a local PostgreSQL (devstack), loads a base of rows, creates the capture's slot, then
makes N mixed changes to action (half inserts, a third updates, the rest deletes, in
transactions of 100 changes; a tenth of the updates change query). Each measurement peeks
the same changes again (peek does not consume), best of --repeat:
  raw COPY    COPY (select data from pg_logical_slot_peek_binary_changes(...)) TO STDOUT -> /dev/null
  raw cursor  the same peek through a psycopg2 named cursor, rows dropped
  capture     read_changes through a named cursor into tracking_sync.extract.parts.PartWriter (zstd parts)
Prints each run's wall time and CPU seconds (client = this Python process, backend = the
PostgreSQL backend that decodes), then the ratio raw / capture of the best wall times (1.0 =
as fast as raw) and of the CPU seconds (steadier on a busy machine). Not part of the test
suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

BASE_ROWS = 50_000
TRANSACTION_CHANGES = 100


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _backend_cpu_seconds(pid: int) -> float:
    """CPU seconds a PostgreSQL backend of this machine has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_changes(connection, changes: int) -> None:
    """`changes` changes in transactions of TRANSACTION_CHANGES: 50% inserts, 35% updates (one
    in ten changes query), 15% deletes of rows of the base."""
    inserts, updates = changes // 2, changes * 35 // 100
    deletes = changes - inserts - updates
    with connection.cursor() as cursor:
        cursor.execute("set synchronous_commit to on")
        plan = (
            [("insert", i) for i in range(inserts)]
            + [("update", i) for i in range(updates)]
            + [("delete", i) for i in range(deletes)]
        )
        # interleave kinds so each transaction mixes them
        plan.sort(key=lambda step: (step[1] * 7919 + hash(step[0])) % changes)
        for start in range(0, len(plan), TRANSACTION_CHANGES):
            for kind, i in plan[start : start + TRANSACTION_CHANGES]:
                if kind == "insert":
                    cursor.execute(
                        "insert into action values (%s, %s, md5(%s::text)::uuid::text, 8, "
                        "timestamp '2025-03-01' + %s * interval '1 second', 3, 40, true, false, "
                        "'select * from t where id = ' || %s || ' -- ' || md5(%s::text))",
                        (BASE_ROWS + 1 + i, 1000 + i % 500, i, i, i, i),
                    )
                elif kind == "update":
                    if i % 10 == 0:
                        cursor.execute(
                            "update action set query = query || ' /* v2 */' where id = %s", (i + 1,)
                        )
                    else:
                        cursor.execute(
                            "update action set is_exercise_checked = not is_exercise_checked, "
                            "action_time = action_time + interval '1 day' where id = %s",
                            (i + 1,),
                        )
                else:
                    cursor.execute("delete from action where id = %s", (BASE_ROWS - i,))
            connection.commit()


def main() -> None:
    import psycopg2

    from devstack.postgres import LocalPostgres
    from devstack.stack import SOURCE_DATABASE, create_source_schema
    from tracking_sync.capture.batch import read_changes
    from tracking_sync.capture.slot import PUBLICATION, create_slot, current_lsn, slot_name
    from tracking_sync.core.sql import render_sql
    from tracking_sync.extract.parts import PartWriter

    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    postgres = LocalPostgres().start()
    try:
        dsn = postgres.create_database(SOURCE_DATABASE)
        create_source_schema(dsn)
        connection = psycopg2.connect(dsn)
        with connection.cursor() as cursor:
            cursor.execute(
                "insert into action select i, 1000 + i %% 500, md5(i::text)::uuid::text, 8, "
                "timestamp '2025-02-01' + i * interval '1 second', 3, 40, i %% 2 = 0, false, "
                "'select * from t where id = ' || i || ' -- ' || md5(i::text) "
                "from generate_series(1, %s) as i",
                (BASE_ROWS,),
            )
        connection.commit()
        slot = slot_name("bench")
        start_lsn = create_slot(connection, slot).consistent_lsn
        started = time.perf_counter()
        make_changes(connection, args.changes)
        print(f"made {args.changes} changes in {time.perf_counter() - started:.1f} s")
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

        def raw_cursor() -> str:
            count = 0
            with connection.cursor(name="raw") as cursor:
                cursor.itersize = 1000
                cursor.execute(peek)
                for _ in cursor:
                    count += 1
            connection.rollback()
            return f"{count} messages"

        def capture() -> str:
            with tempfile.TemporaryDirectory() as directory:
                writer = PartWriter(Path(directory), 512 * 1024 * 1024)
                result = read_changes(connection, slot, PUBLICATION, start_lsn, upto, writer)
                parts = writer.close()
            return (
                f"{result.rows} rows, {result.transactions} transactions, "
                f"{result.bytes / 1e6:.1f} MB CSV -> {sum(p.bytes for p in parts) / 1e6:.1f} MB zstd"
            )

        with connection.cursor() as cursor:
            cursor.execute("select pg_backend_pid()")
            (backend,) = cursor.fetchone()
        connection.rollback()
        best: dict[str, float] = {}
        cpu: dict[str, tuple[float, float]] = {}
        for _ in range(args.repeat):
            for name, run in (("raw COPY", raw_copy), ("raw cursor", raw_cursor), ("capture", capture)):
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
                    f"  {name:<11} {elapsed:6.2f} s  cpu client {client:5.2f} s backend {server:5.2f} s  {what}"
                )
        print(f"\nbest of {args.repeat}, {args.changes} changes:")
        for name, elapsed in best.items():
            client, server = cpu[name]
            print(
                f"  {name:<11} {elapsed:6.2f} s  {args.changes / elapsed:9,.0f} changes/s   "
                f"cpu client {client:5.2f} s + backend {server:5.2f} s"
            )
        for raw in ("raw COPY", "raw cursor"):
            print(
                f"  ratio {raw} / capture: wall {best[raw] / best['capture']:.2f}, "
                f"cpu {sum(cpu[raw]) / sum(cpu['capture']):.2f}"
            )
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()
