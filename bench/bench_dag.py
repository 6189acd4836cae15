"""Benchmark: the whole full-refresh DAG against the sum of its stages' limits, and the stock path.

    .venv/bin/python bench/bench_dag.py                     # 1 M and 10 M rows
    .venv/bin/python bench/bench_dag.py --rows 1000000 --stock

Starts the local stack (PostgreSQL, S3, the Redshift stand-in), generates N demo rows, runs
the real `postgres_to_redshift` DAG once as a full refresh (dag.test(): every task in this
process, real operators), and reads each task's duration from the run's task instances.
Then, on the same data in the same process run, each stage's limit:
  export    COPY action TO STDOUT -> /dev/null (what psql's \\copy does), psycopg2
  upload    plain boto3 upload_file of the same parts (re-exported, untimed), best of 3
  load      PostgreSQL's own COPY FROM STDIN of the same parts into the stand-in's backend
  validate  the reference per-user query on each engine, best of 3; the slower engine counts
and prints the table: stage, took, limit, ratio (the goals: the whole run within 1.3x of the
sum of the limits, validate within 1.5x, upload within 1.1x), the load average, the fixed
cost per task, and where the validate task's time went (its report's timings). With --stock (1 M rows by default), the path a user would write instead:
the Amazon provider's SqlToS3Operator (pandas, CSV) then S3ToRedshiftOperator (COPY CSV),
in a child process: its time, its peak RSS, and whether NULL and '' in `query` stayed apart
in the target. With --changes N, then N mixed changes over every day and one nightly capture
run (after VACUUM ANALYZE of the target's action, as a day later: see settle()): its time against
the full refresh's (the goal: <= 0.10), every task's time, the apply's statements and their
seconds (tracking_sync.load.apply_changes logs them at DEBUG), and where validate's time went.
Not part of the test suite; the machine is shared, so figures are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

STOCK_TABLE = "action_stock"
LIMIT_REPEATS = 3
REFERENCE_PER_USER = """
with user_sessions as (
    select
        user_profile_id,
        session_id,
        extract(epoch from max(action_time)) - extract(epoch from min(action_time)) as session_duration
    from {schema}.action
    group by user_profile_id, session_id
)
select user_profile_id, sum(session_duration), avg(session_duration)
from user_sessions
group by user_profile_id
"""


def configure_airflow(home: str) -> None:
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")


def run_full_refresh(conf: dict | None = None, day: int = 2) -> tuple[float, dict[str, float], str]:
    """One run through dag.test() (a full refresh by default): (wall seconds, task_id ->
    seconds, final state)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.session import create_session

    from tracking_sync.core.names import DAG_ID
    from tracking_sync.core.params import DEFAULT_PARAMS

    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag(DAG_ID)
    dag.deadline = None  # Airflow 3.3's dag.test() cannot finish a run with one
    for task in dag.tasks:
        task.retries = 0
    started = time.perf_counter()
    run = dag.test(
        logical_date=datetime(2026, 1, day, tzinfo=UTC),
        run_conf=DEFAULT_PARAMS | (conf or {"mode": "full_refresh", "validation": "full"}),
    )
    took = time.perf_counter() - started
    with create_session() as session:
        durations = {
            ti.task_id: (ti.end_date - ti.start_date).total_seconds()
            for ti in run.get_task_instances(session=session)
            if ti.start_date and ti.end_date
        }
    return took, durations, str(run.state)


def validation_report(run_id: str | None = None) -> dict:
    """The validate task's report (XCom) of the DAG's latest run, or of `run_id`."""
    import json

    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from tracking_sync.core.names import DAG_ID, REPORT_XCOM_KEY

    with create_session() as session:
        if run_id is None:
            run_id = (
                session.query(DagRun.run_id)
                .filter(DagRun.dag_id == DAG_ID)
                .order_by(DagRun.id.desc())
                .first()[0]
            )
        row = session.scalars(
            XComModel.get_many(run_id=run_id, key=REPORT_XCOM_KEY, task_ids="validate", dag_ids=DAG_ID)
        ).first()
        if row is None:
            return {}
        value = XComModel.deserialize_value(row)
    return value if isinstance(value, dict) else json.loads(value)


# Tasks that do (next to) nothing on a full refresh: their duration is a task's fixed cost
# inside dag.test() (the task runner, the XCom pulls and push, the log). Figures measured
# before partition_action and create_action_staging were dropped took the median of those too.
NO_OP_TASKS = ("advance_capture_slot", "create_schema")


def fixed_cost_line(whole: float, tasks: dict[str, float]) -> str:
    """The fixed cost per task: between tasks (dag.test()'s scheduling loop: the run's wall
    minus the tasks' own time, per task) and inside a task that does nothing."""
    between = (whole - sum(tasks.values())) / max(1, len(tasks))
    no_ops = sorted(tasks[name] for name in NO_OP_TASKS if name in tasks)
    inside = no_ops[len(no_ops) // 2] if no_ops else float("nan")
    return (
        f"fixed cost per task: {between:.2f} s between tasks + {inside:.2f} s inside a no-op task "
        f"(median of {', '.join(n for n in NO_OP_TASKS if n in tasks)}) = {between + inside:.2f} s; "
        f"{len(tasks)} tasks: {len(tasks) * (between + inside):.1f} s of the run"
    )


def validate_line(took: float, report: dict) -> str:
    """Where the validate task's time went: its report's shared pass per engine (both at
    once), each check (both engines at once, compared), and the task around them."""
    if not report:
        return "validate: no report"
    checks = ", ".join(f"{check['name']} {check['seconds']:.2f} s" for check in report["checks"])
    passes = ", ".join(f"{side} {seconds:.2f} s" for side, seconds in report.get("pass_seconds", {}).items())
    return (
        f"validate {took:.2f} s = validation {report['seconds']:.2f} s (shared passes per user and per day, both engines at once: "
        f"{passes or '-'}; then {checks}) + {took - report['seconds']:.2f} s of the task around it "
        f"(start-up, connections, the report's XCom and log, the asset events)"
    )


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def make_changes(dsn: str, changes: int) -> None:
    """`changes` mixed changes spread over every day of action, in transactions of 100: a half
    inserts (late rows, on every day), 35 % updates (a tenth of them to query), 15 % deletes."""
    import psycopg2

    inserts, updates = changes // 2, changes * 35 // 100
    deletes = changes - inserts - updates
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("select min(id), max(id), min(action_time), max(action_time) from action")
        low, high, first, last = cursor.fetchone()
        step = max(1, (high - low) // (updates + deletes + 1))
        span = (last - first).total_seconds()
        for batch in range(0, inserts, 100):
            cursor.execute(
                "insert into action (id, user_profile_id, session_id, action_type_id, action_time, "
                "is_async, query) select %s + g, 1000 + g %% 500, 'late-' || g, 2, "
                "%s + (g * %s / %s) * interval '1 second', false, 'select ' || g "
                "from generate_series(%s, %s) g",
                (high, first, span, inserts, batch + 1, min(batch + 100, inserts)),
            )
            connection.commit()
        ids = [low + step * (i + 1) for i in range(updates + deletes)]
        for batch in range(0, updates, 100):
            chunk = ids[batch : min(batch + 100, updates)]
            cursor.execute(
                "update action set course_id = coalesce(course_id, 0) + 1, "
                "query = case when id %% 10 = 0 then query || ' /* edited */' else query end "
                "where id = any(%s)",
                (chunk,),
            )
            connection.commit()
        for batch in range(updates, updates + deletes, 100):
            cursor.execute("delete from action where id = any(%s)", (ids[batch : batch + 100],))
            connection.commit()


def settle(backend_dsn: str) -> float:
    """VACUUM ANALYZE the target's action on the stand-in's backend; the seconds it took.
    A nightly runs a day after the full refresh: by then autovacuum has visited the swapped-in
    table (10 M inserts) and given it statistics (Redshift's COPY into an empty table updates
    them itself). Run during the nightly, that autovacuum holds a lock the apply's LOCK waits
    for until deadlock_timeout (1 s) cancels it. The source is left as generated (analyzed):
    a vacuum there writes WAL that the capture would decode through."""
    import psycopg2

    started = time.perf_counter()
    connection = psycopg2.connect(backend_dsn)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("vacuum (analyze) tracking.action")
    finally:
        connection.close()
    return time.perf_counter() - started


class StatementTimes(logging.Handler):
    """The apply's statements and their seconds (tracking_sync.load.apply_changes logs each
    at DEBUG), collected during the nightly run."""

    LOGGER = "tracking_sync.load.apply_changes"

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.times: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.DEBUG and len(record.args or ()) == 2:
            seconds, statement = record.args
            self.times.append((float(seconds), str(statement)))

    @contextlib.contextmanager
    def collecting(self):
        logger = logging.getLogger(self.LOGGER)
        level = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.setLevel(level)

    def line(self, took: float) -> str:
        total = sum(seconds for seconds, _ in self.times)
        slow = [(seconds, statement) for seconds, statement in self.times if seconds >= 0.05]
        rest = total - sum(seconds for seconds, _ in slow)
        return (
            f"replace_action_rows {took:.2f} s = {len(self.times)} statements {total:.2f} s ("
            + "; ".join(f"{seconds:.2f} s {statement[:60]}" for seconds, statement in slow)
            + f"; the other {len(self.times) - len(slow)} {rest:.2f} s) + {took - total:.2f} s of the task "
            "around them (start-up, connections, the staging table's check)"
        )


def export_limit(dsn: str) -> float:
    import psycopg2

    connection = psycopg2.connect(dsn)
    try:
        started = time.perf_counter()
        with open(os.devnull, "wb") as sink, connection.cursor() as cursor:
            cursor.copy_expert("copy action to stdout with (format csv)", sink)
        return time.perf_counter() - started
    finally:
        connection.close()


def export_parts(dsn: str, directory: Path) -> list[Path]:
    import psycopg2

    from tracking_sync.core.plan import RunSlice
    from tracking_sync.core.settings import Settings
    from tracking_sync.core.tables import ACTION
    from tracking_sync.extract.export import export_table

    connection = psycopg2.connect(dsn)
    try:
        part_bytes = Settings.from_env().part_bytes
        result = export_table(connection, ACTION, RunSlice(True), directory, part_bytes=part_bytes)
    finally:
        connection.close()
    return [directory / part.name for part in result.parts]


def upload_limit(endpoint: str, bucket: str, parts: list[Path], access_key: str, secret: str) -> float:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )
    started = time.perf_counter()
    for part in parts:
        client.upload_file(str(part), bucket, f"bench-limit/{part.name}")
    return time.perf_counter() - started


def load_limit(backend_dsn: str, parts: list[Path]) -> float:
    """PostgreSQL's own COPY FROM STDIN of the parts into a table shaped as the staging table."""
    import psycopg2
    import zstandard

    from tracking_sync.load.schema import action_staging_statements

    connection = psycopg2.connect(backend_dsn)
    try:
        with connection.cursor() as cursor:
            create = action_staging_statements("bench_limit", "action_copy")[1]
            for keyword in ("distkey (user_profile_id)", "sortkey (action_time)"):
                create = create.replace(keyword, "")
            cursor.execute("drop schema if exists bench_limit cascade; create schema bench_limit")
            cursor.execute(create)
            connection.commit()
            started = time.perf_counter()
            for part in parts:
                with open(part, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as csv:
                    cursor.copy_expert(
                        "copy bench_limit.action_copy from stdin with (format csv, null '\\N')",
                        csv,
                        size=1 << 20,
                    )
            connection.commit()
            took = time.perf_counter() - started
            cursor.execute("drop schema bench_limit cascade")
            connection.commit()
            return took
    finally:
        connection.close()


def per_user_query(dsn: str, schema: str) -> float:
    import psycopg2

    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(REFERENCE_PER_USER.format(schema=schema))
            cursor.fetchall()
            return time.perf_counter() - started
    finally:
        connection.close()


def stock_path(env: dict, out) -> None:
    """SqlToS3Operator then S3ToRedshiftOperator, as their docs show them, in this child process."""
    os.environ.update(env)
    logging.getLogger("airflow").setLevel(logging.WARNING)
    from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator
    from airflow.providers.amazon.aws.transfers.sql_to_s3 import SqlToS3Operator

    from tracking_sync.connections import redshift_connection

    connection = redshift_connection()
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"drop table if exists tracking.{STOCK_TABLE}")
        cursor.execute(f"create table tracking.{STOCK_TABLE} (like tracking.action)")
    started = time.perf_counter()
    SqlToS3Operator(
        task_id="sql_to_s3",
        sql_conn_id="postgres_source",
        query="select * from action",
        s3_bucket=env["TRACKING_SYNC_BUCKET"],
        s3_key="stock/action.csv",
        file_format="csv",
        replace=True,
        df_kwargs={"index": False},
    ).execute({})
    S3ToRedshiftOperator(
        task_id="s3_to_redshift",
        schema="tracking",
        table=STOCK_TABLE,
        s3_bucket=env["TRACKING_SYNC_BUCKET"],
        s3_key="stock/action.csv",
        copy_options=["csv", "ignoreheader 1", "timeformat 'auto'"],
        method="REPLACE",
    ).execute({})
    took = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(
            f"select count(*) filter (where query is null), count(*) filter (where query = '') "
            f"from tracking.{STOCK_TABLE}"
        )
        nulls, empties = cursor.fetchone()
        cursor.execute(f"drop table tracking.{STOCK_TABLE}")
    connection.close()
    out.put((took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, nulls, empties))


def source_null_and_empty(dsn: str) -> tuple[int, int]:
    import psycopg2

    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select count(*) filter (where query is null), count(*) filter (where query = '') from action"
            )
            return cursor.fetchone()
    finally:
        connection.close()


def bench(rows: int, stock: bool, changes: int = 0) -> None:
    from devstack import demo_data
    from devstack.stack import start_stack

    home = tempfile.mkdtemp(prefix="bench-dag-home-")
    configure_airflow(home)
    stack = start_stack()
    try:
        os.environ.update(stack.env())
        os.environ["TRACKING_SYNC_STAGING_DIR"] = os.path.join(home, "staging")
        print(f"\n== {rows:,} rows ==", flush=True)
        generated = time.perf_counter()
        demo_data.generate(stack.source_dsn, rows=rows)
        print(f"generated in {time.perf_counter() - generated:.0f} s", flush=True)

        from airflow.utils import db

        logging.getLogger("alembic").setLevel(logging.WARNING)
        db.resetdb()
        print(f"load average before the run: {load_average()}", flush=True)
        whole, tasks, state = run_full_refresh()
        run_load = load_average()
        print(f"full refresh: {state} in {whole:.1f} s (load average {run_load})", flush=True)
        report = validation_report()

        backend = stack.redshift.backend_dsn()
        # The nightly before the limits, which then read the table with the changes in it
        # (+3,500 rows net at 10,000 changes: 0.035 % of 10 M). The stand-in's backend is a
        # PostgreSQL cluster of its own (devstack.stack): neither the full refresh's COPY nor
        # the load limit's lands in the source's WAL, which the capture and the slot's advance
        # decode from the slot's start; a real source's WAL holds its own changes only too.
        if changes:
            settled = settle(backend)
            make_changes(stack.source_dsn, changes)
            statements = StatementTimes()
            with statements.collecting():
                nightly, nightly_tasks, nightly_state = run_full_refresh({"mode": "changes"}, day=3)
            nightly_load = load_average()
            print(
                f"\nnightly capture run, {changes:,} mixed changes over every day: {nightly_state} in "
                f"{nightly:.1f} s = {nightly / whole:.3f} of the full refresh ({whole:.1f} s; goal <= 0.10: "
                f"{'met' if nightly <= 0.10 * whole else 'NOT met'}); export_action (the capture) "
                f"{nightly_tasks.get('export_action', float('nan')):.1f} s, replace_action_rows (the apply) "
                f"{nightly_tasks.get('replace_action_rows', float('nan')):.1f} s, validate "
                f"{nightly_tasks.get('validate', float('nan')):.1f} s (load average {nightly_load}; "
                f"before it, VACUUM ANALYZE of the target's action: {settled:.1f} s)",
                flush=True,
            )
            print(
                "every task: "
                + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in sorted(nightly_tasks.items()))
            )
            print(fixed_cost_line(nightly, nightly_tasks))
            print(statements.line(nightly_tasks.get("replace_action_rows", float("nan"))))
            print(validate_line(nightly_tasks.get("validate", float("nan")), validation_report()), flush=True)

        limits = {"export": export_limit(stack.source_dsn)}
        work = Path(home) / "limit-parts"
        parts = export_parts(stack.source_dsn, work)
        # the two short limits, best of LIMIT_REPEATS (interleaved): the stricter limit on a
        # shared machine, where one slow repeat would flatter the stage
        limits["upload"] = min(
            upload_limit(
                stack.s3.endpoint_url,
                stack.s3.bucket,
                parts,
                stack.s3.access_key_id,
                stack.s3.secret_access_key,
            )
            for _ in range(LIMIT_REPEATS)
        )
        limits["load"] = load_limit(backend, parts)
        source_times, target_times = [], []
        for _ in range(LIMIT_REPEATS):
            source_times.append(per_user_query(stack.source_dsn, "public"))
            target_times.append(per_user_query(backend, "tracking"))
        source_q, target_q = min(source_times), min(target_times)
        limits["validate"] = max(source_q, target_q)
        shutil.rmtree(work, ignore_errors=True)
        limits_load = load_average()
        print(f"limits measured (load average {limits_load} on {os.cpu_count()} cores)", flush=True)

        stages = [
            ("export_action", "export", "psql \\copy to /dev/null"),
            ("upload_action", "upload", f"plain boto3, best of {LIMIT_REPEATS}"),
            ("load_action_staging", "load", "PostgreSQL's COPY FROM of the parts"),
            ("replace_action_rows", None, "swap in, no second write"),
            (
                "validate",
                "validate",
                f"the slower engine's per-user query, best of {LIMIT_REPEATS} (source {source_q:.2f} s, "
                f"target {target_q:.2f} s)",
            ),
        ]
        total_limit = sum(limits.values())
        print(
            f"\n{rows:,} rows; load average (1, 5, 15 min) after the run {run_load}, after the limits "
            f"{limits_load}, on {os.cpu_count()} cores"
        )
        print("\n| stage | took | its limit, same data | ratio |\n|---|---|---|---|")
        print(
            f"| whole run | {whole:.1f} s | {total_limit:.1f} s (export + upload + load + validate) | "
            f"{whole / total_limit:.2f}x |"
        )
        for task_id, limit_name, what in stages:
            took = tasks.get(task_id, float("nan"))
            if limit_name is None:
                print(f"| {task_id} | {took:.1f} s | — ({what}) | |")
                continue
            limit = limits[limit_name]
            print(f"| {task_id} | {took:.1f} s | {limit:.1f} s ({what}) | {took / limit:.2f}x |")
        others = sum(v for k, v in tasks.items() if k not in {s[0] for s in stages})
        print(
            f"(other tasks together: {others:.1f} s; goals: whole run <= 1.3x the sum of limits: "
            f"{'met' if whole <= 1.3 * total_limit else 'NOT met'}; validate <= 1.5x: "
            f"{'met' if tasks.get('validate', float('inf')) <= 1.5 * limits['validate'] else 'NOT met'}; "
            f"upload <= 1.1x: {'met' if tasks.get('upload_action', float('inf')) <= 1.1 * limits['upload'] else 'NOT met'})",
            flush=True,
        )
        print(
            "every task: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in sorted(tasks.items()))
        )
        print(fixed_cost_line(whole, tasks))
        print(validate_line(tasks.get("validate", float("nan")), report), flush=True)

        if stock:
            nulls, empties = source_null_and_empty(stack.source_dsn)
            out = multiprocessing.get_context("fork").Queue()
            child = multiprocessing.get_context("fork").Process(
                target=stock_path, args=(dict(os.environ), out)
            )
            child.start()
            took, rss, target_nulls, target_empties = out.get()
            child.join()
            kept = (target_nulls, target_empties) == (nulls, empties)
            print(
                f"\nstock path (SqlToS3Operator + S3ToRedshiftOperator), {rows:,} rows: {took:.1f} s, "
                f"peak RSS {rss:.0f} MiB; query NULL/'' in the source {nulls:,}/{empties:,}, in the "
                f"target {target_nulls:,}/{target_empties:,}: NULL and '' "
                f"{'kept apart' if kept else 'NOT kept apart'}",
                flush=True,
            )
    finally:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, action="append", help="repeatable; default 1 M then 10 M")
    parser.add_argument("--stock", action="store_true", help="also the stock path (default: at 1 M rows)")
    parser.add_argument(
        "--changes", type=int, default=0, help="then N mixed changes and a nightly capture run against it"
    )
    args = parser.parse_args()
    for rows in args.rows or [1_000_000, 10_000_000]:
        bench(rows, stock=args.stock or (not args.rows and rows == 1_000_000), changes=args.changes)


if __name__ == "__main__":
    main()
