"""Benchmark: a full refresh of `action` in N = 1, 2, 4 partitions, against its limit.

    .venv/bin/python bench/bench_partitions.py [--rows 10000000] [--repeat 3] [--whole-run]

Starts a local PostgreSQL and S3 (devstack), generates N demo rows (ANALYZEd: pg_stats has
the histogram the partitions are cut from), then for each number of partitions, each
measurement in child processes started together (one per partition, as the mapped tasks
run), interleaved over --repeat rounds:

  limit    the raw `COPY (<the export SELECT of each partition>) TO STDOUT` -> /dev/null,
           the partitions' streams side by side
  export   tracking_sync.extract.export.export_for_run of each partition (file:// staging area)
  upload   tracking_sync.stage.upload.publish_parts of each partition, then write_manifest

It prints wall times (the slowest partition's end minus the first start), the speed-up over
one partition, the ratio to the limit, and each task's peak RSS.

--whole-run adds the whole DAG run under Airflow's real scheduler (LocalExecutor, the
Redshift stand-in as target; devstack.airflow.AirflowDeployment): one full refresh per N,
wall time of the run and of export+upload (first export start to last upload end). Not
part of the test suite.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

PARTITION_COUNTS = (1, 2, 4)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _backend_cpu_seconds(connection) -> float:
    """CPU seconds the connection's PostgreSQL backend has used (it runs on this machine)."""
    import os

    with connection.cursor() as cursor:
        cursor.execute("select pg_backend_pid()")
        (pid,) = cursor.fetchone()
    connection.rollback()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _plan(partitions: int):
    from datetime import UTC, datetime

    from tracking_sync.core.plan import plan_run

    return plan_run(
        {"mode": "full_refresh", "partitions": partitions},
        None,
        None,
        run_after=datetime(2026, 1, 1, tzinfo=UTC),
    )


def raw_copy(dsn: str, partition: dict, start_together, out) -> None:
    """COPY (<the partition's export SELECT>) TO STDOUT -> /dev/null."""
    import psycopg2

    from tracking_sync.core.tables import ACTION
    from tracking_sync.extract.export import copy_statement
    from tracking_sync.extract.partitions import Partition

    connection = psycopg2.connect(dsn)
    with connection.cursor() as cursor:
        cursor.execute("set timezone to 'UTC'")
        statement = copy_statement(cursor, ACTION, _plan(1).run_slice, Partition.from_xcom(partition))
    start_together.wait()
    start, cpu, backend_cpu = time.time(), _cpu_seconds(), _backend_cpu_seconds(connection)
    with open("/dev/null", "wb") as sink, connection.cursor() as cursor:
        cursor.copy_expert(statement, sink)
        rows = cursor.rowcount
    end = time.time()
    cpu = (_cpu_seconds() - cpu, _backend_cpu_seconds(connection) - backend_cpu)
    out.put(("limit", start, end, rows, _peak_rss_mb(), cpu))


def export_partition(dsn: str, settings, partition: dict, start_together, out) -> None:
    import psycopg2

    from tracking_sync.extract.export import export_for_run
    from tracking_sync.extract.partitions import Partition

    partition = Partition.from_xcom(partition)
    connection = psycopg2.connect(dsn)
    start_together.wait()
    start, cpu, backend_cpu = time.time(), _cpu_seconds(), _backend_cpu_seconds(connection)
    summary = export_for_run("action", _plan(partition.count), settings, connection, partition=partition)
    end = time.time()
    summary["cpu"] = (_cpu_seconds() - cpu, _backend_cpu_seconds(connection) - backend_cpu)
    out.put(("export", start, end, summary["rows"], _peak_rss_mb(), summary))


def upload_partition(s3_port: int, settings, summary: dict, start_together, out) -> None:
    from devstack.s3 import LocalS3
    from tracking_sync.stage.upload import publish_parts

    client = LocalS3(port=s3_port).client()
    start_together.wait()
    start = time.time()
    published = publish_parts(client, settings, summary)
    out.put(("upload", start, time.time(), published["rows"], _peak_rss_mb(), published))


def side_by_side(target, argument_lists: list[tuple]) -> tuple[float, list[tuple]]:
    """Run target(*args, barrier, queue) in one child per argument list, started together;
    (wall seconds from the first start to the last end, each child's result)."""
    queue = multiprocessing.Queue()
    barrier = multiprocessing.Barrier(len(argument_lists))
    children = [
        multiprocessing.Process(target=target, args=(*args, barrier, queue)) for args in argument_lists
    ]
    for child in children:
        child.start()
    results = [queue.get() for _ in children]
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"{target.__name__} failed in a child (exit {child.exitcode})")
    wall = max(r[2] for r in results) - min(r[1] for r in results)
    return wall, results


def measure_stages(stack, partitions: int, settings, round_: int) -> dict:
    import psycopg2

    from devstack.s3 import LocalS3
    from tracking_sync.core.tables import ACTION
    from tracking_sync.extract.partitions import plan_partitions
    from tracking_sync.stage.upload import write_manifest

    with psycopg2.connect(stack.source_dsn) as connection:
        cut = [p.to_xcom() for p in plan_partitions(connection, ACTION, partitions)]
    limit, limited = side_by_side(raw_copy, [(stack.source_dsn, p) for p in cut])
    export, exported = side_by_side(export_partition, [(stack.source_dsn, settings, p) for p in cut])
    summaries = [r[5] for r in exported]
    export_cpu = [s.pop("cpu") for s in summaries]
    cpu = {  # CPU seconds of all partitions together: client (Python) and PostgreSQL backend
        "limit_client": sum(r[5][0] for r in limited),
        "limit_backend": sum(r[5][1] for r in limited),
        "export_client": sum(c[0] for c in export_cpu),
        "export_backend": sum(c[1] for c in export_cpu),
    }
    upload, uploaded = side_by_side(upload_partition, [(stack.s3.port, settings, s) for s in summaries])
    started = time.time()
    written = write_manifest(
        LocalS3(port=stack.s3.port).client(), settings, "action", [r[5] for r in uploaded]
    )
    manifest = time.time() - started
    return {
        "partitions": partitions,
        "limit": limit,
        "export": export,
        "upload": upload + manifest,
        "rows": [r[3] for r in exported],
        "parts": len(written["part_uris"]),
        "rss_export": max(r[4] for r in exported),
        "rss_upload": max(r[4] for r in uploaded),
        **cpu,
    }


def whole_runs(stack, rows: int) -> dict[int, dict]:
    """One full refresh per N under Airflow's real scheduler (LocalExecutor)."""
    import json
    import uuid

    from devstack.airflow import AirflowDeployment
    from tracking_sync.core.names import DAG_ID

    home = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
    deployment = AirflowDeployment(
        home,
        postgres=stack.postgres,
        env={
            **stack.env(),
            "TRACKING_SYNC_STAGING_DIR": str(home / "staging"),
            "TRACKING_SYNC_PREFIX": f"bench-run-{uuid.uuid4().hex[:8]}",
            "TRACKING_SYNC_DEADLINE_MINUTES": "off",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        },
        startup_timeout=300,
    )
    measured = {}
    try:
        deployment.start(dag_ids=(DAG_ID,))
        deployment.cli("dags", "unpause", DAG_ID)
        # A warm-up run first (a nightly run of a day without data: creates the schema, starts
        # the task paths once), so the first measured run pays no first-time costs.
        deployment.cli("dags", "trigger", DAG_ID, "--run-id", "warm_up", "--logical-date", "2026-06-02")
        deployment.wait_for_runs("dag_run.run_id = %s", ("warm_up",), 1, timeout=900)
        for n in PARTITION_COUNTS:
            run_id = f"bench_{n}_{uuid.uuid4().hex[:6]}"
            conf = json.dumps({"mode": "full_refresh", "partitions": n})
            deployment.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", conf)
            (run,) = deployment.wait_for_runs("dag_run.run_id = %s", (run_id,), 1, timeout=3600)
            assert run[1] == "success", run
            ((start, end),) = deployment.query(
                "select start_date, end_date from dag_run where run_id = %s", (run_id,)
            )
            ((stage_start, stage_end),) = deployment.query(
                "select min(start_date) filter (where task_id = 'export_action'), "
                "max(end_date) filter (where task_id = 'upload_action') from task_instance where run_id = %s",
                (run_id,),
            )
            tasks = deployment.query(
                "select task_id, count(*), max(extract(epoch from end_date - start_date)) from task_instance "
                "where run_id = %s group by task_id order by min(start_date)",
                (run_id,),
            )
            measured[n] = {
                "run": (end - start).total_seconds(),
                "export_upload": (stage_end - stage_start).total_seconds(),
                "tasks": tasks,
            }
            print(f"  whole run, {n} partition(s): {measured[n]['run']:.1f} s", flush=True)
    finally:
        deployment.stop()
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each measurement (median shown)")
    parser.add_argument("--whole-run", action="store_true", help="also time whole DAG runs under Airflow")
    args = parser.parse_args()

    from devstack import demo_data
    from devstack.stack import Stack
    from tracking_sync.core.settings import Settings

    stack = Stack(with_redshift=args.whole_run).start()
    try:
        t = time.perf_counter()
        demo_data.generate(stack.source_dsn, rows=args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t:.1f} s", flush=True)
        settings = Settings(
            bucket=stack.s3.bucket,
            prefix="bench-partitions",
            scratch_dir=Path(tempfile.mkdtemp(prefix="bench-")),
        )
        rounds: dict[int, list[dict]] = {n: [] for n in PARTITION_COUNTS}
        for round_ in range(args.repeat):
            for n in PARTITION_COUNTS:  # interleaved: the machine is shared and noisy
                result = measure_stages(stack, n, settings, round_)
                rounds[n].append(result)
                print(
                    f"  round {round_ + 1}, {n} partition(s): limit {result['limit']:.2f} s, export "
                    f"{result['export']:.2f} s, upload {result['upload']:.2f} s, rows {result['rows']}",
                    flush=True,
                )
        runs = whole_runs(stack, args.rows) if args.whole_run else {}
    finally:
        stack.stop()

    def median(n: int, key: str) -> float:
        return statistics.median(r[key] for r in rounds[n])

    print(f"\n{args.rows:,} rows; medians of {args.repeat} rounds; wall = first start to last end")
    header = (
        f"{'N':>2} {'limit s':>8} {'export s':>9} {'vs N=1':>7} {'limit vs N=1':>13} {'export/limit':>13} "
        f"{'upload s':>9} {'exp+upl s':>10} {'vs N=1':>7} {'parts':>6} {'RSS export':>11} {'RSS upload':>11}"
    )
    print(header)
    for n in PARTITION_COUNTS:
        export, limit, upload = median(n, "export"), median(n, "limit"), median(n, "upload")
        both = export + upload
        print(
            f"{n:>2} {limit:>8.2f} {export:>9.2f} {median(1, 'export') / export:>6.2f}x "
            f"{median(1, 'limit') / limit:>12.2f}x {limit / export:>13.2f} {upload:>9.2f} {both:>10.2f} "
            f"{(median(1, 'export') + median(1, 'upload')) / both:>6.2f}x {rounds[n][0]['parts']:>6} "
            f"{max(r['rss_export'] for r in rounds[n]):>8.0f} MB {max(r['rss_upload'] for r in rounds[n]):>8.0f} MB"
        )
    print("\nCPU seconds, all partitions together (client = the Python process, backend = PostgreSQL's):")
    print(f"{'N':>2} {'limit client':>13} {'limit backend':>14} {'export client':>14} {'export backend':>15}")
    for n in PARTITION_COUNTS:
        print(
            f"{n:>2} {median(n, 'limit_client'):>13.1f} {median(n, 'limit_backend'):>14.1f} "
            f"{median(n, 'export_client'):>14.1f} {median(n, 'export_backend'):>15.1f}"
        )
    print(
        "\nexport/limit: the export stage's speed as a share of the raw COPY streams of the same partitions"
    )
    print("goal: N=2 export >= 1.6x N=1; peak RSS per task flat (the same at every N)")
    if runs:
        print(
            f"\nwhole DAG run under Airflow (LocalExecutor, Redshift stand-in), {args.rows:,} rows, one run each:"
        )
        print(f"{'N':>2} {'run s':>8} {'vs N=1':>7} {'export+upload s':>16} {'vs N=1':>7}")
        for n, run in runs.items():
            print(
                f"{n:>2} {run['run']:>8.1f} {runs[1]['run'] / run['run']:>6.2f}x {run['export_upload']:>16.1f} "
                f"{runs[1]['export_upload'] / run['export_upload']:>6.2f}x"
            )
        for n, run in runs.items():
            print(
                f"  N={n}: "
                + ", ".join(f"{task}×{count} {seconds:.1f}s" for task, count, seconds in run["tasks"])
            )


if __name__ == "__main__":
    main()
