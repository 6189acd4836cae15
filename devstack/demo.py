"""`make demo`: the main job, once, on the local stack.

Starts PostgreSQL, S3 and the Redshift stand-in; fills the source with demo data;
runs the real `postgres_to_redshift` DAG (dag.test(): every task in this process,
real operators, real connections) as a full refresh; then changes days already
loaded in the source, as a live tracking database does (a late action, a user
erased, an edit, a row moved to another day), and runs the nightly, which applies
those changes from the source's WAL; prints what each task did, the changes it
applied per kind, the per-user totals on both engines side by side and the verdict;
stops the stack.

    python -m devstack.demo [--rows N]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime

from devstack.stack import REPO_ROOT


def _configure_airflow(home: str) -> None:
    """Airflow reads its settings on first import: these must be set before that."""
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    sys.path.insert(0, str(REPO_ROOT / "plugins"))


def _say(message: str) -> None:
    print(message, flush=True)


def _print_run(dag_run) -> bool:
    """Each task's final state and what it reported (rows, bytes, parts) from XCom."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = sorted(dag_run.get_task_instances(session=session), key=lambda ti: ti.start_date or ti.end_date)
        for ti in tis:
            value = session.scalars(
                XComModel.get_many(
                    run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=ti.task_id, key="return_value"
                )
            ).first()
            detail = ""
            if value is not None:
                result = XComModel.deserialize_value(value)
                if isinstance(result, dict) and "rows" in result:
                    detail = f"rows={result['rows']:,}" + (
                        f" bytes={result['bytes']:,} parts={len(result.get('parts') or result.get('part_uris', []))}"
                        if "bytes" in result
                        else ""
                    )
                if isinstance(result, dict) and result.get("changes"):
                    detail = "applied " + ", ".join(f"{n} {kind}" for kind, n in result["changes"].items())
            _say(f"  {ti.task_id:<24} {str(ti.state):<8} {detail}")
    _say(f"  run {dag_run.run_id}: {dag_run.state}")
    return dag_run.state == "success"


def _side_by_side(window_end: datetime) -> str:
    from devstack.side_by_side import format_side_by_side
    from tracking_sync.connections import redshift_connection, source_streaming_connection
    from tracking_sync.core.params import DEFAULT_TARGET_SCHEMA

    source = source_streaming_connection()
    target = redshift_connection()
    try:
        return format_side_by_side(
            source, target, target_schema=DEFAULT_TARGET_SCHEMA, window_end=window_end, first=5, last=5
        )
    finally:
        source.close()
        target.close()


def run(rows: int) -> int:
    from devstack import demo_data
    from devstack.stack import start_stack

    home = tempfile.mkdtemp(prefix="demo-airflow-home-")
    _configure_airflow(home)
    started = time.perf_counter()
    _say("starting the local stack (PostgreSQL, S3, Redshift stand-in) ...")
    stack = start_stack()
    try:
        os.environ.update(stack.env())
        os.environ.setdefault("TRACKING_SYNC_STAGING_DIR", os.path.join(home, "staging"))
        _say(f"generating {rows:,} demo actions in the source database ...")
        demo_data.generate(stack.source_dsn, rows=rows)

        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils import db

        logging.getLogger("alembic").setLevel(logging.WARNING)
        db.resetdb()
        from tracking_sync.core.names import DAG_ID
        from tracking_sync.core.params import DEFAULT_PARAMS

        dag = DagBag(dag_folder=str(REPO_ROOT / "dags")).get_dag(DAG_ID)
        # Airflow 3.3's dag.test() cannot mark a run of a DAG with a Deadline Alert successful
        # (tracking_sync.oncall.deadlines): the demo runs without it.
        dag.deadline = None
        # The nightly run applies what the source's WAL says changed since the full refresh:
        # dag.test() makes a manual run, so it asks for that with mode=changes, which is what a
        # scheduled nightly run does by default.
        runs = [
            (
                "full refresh",
                datetime(2026, 1, 1, tzinfo=UTC),
                {"mode": "full_refresh", "validation": "full"},
            ),
            ("nightly run for 2026-01-01", datetime(2026, 1, 2, tzinfo=UTC), {"mode": "changes"}),
        ]
        ok = True
        for title, logical_date, conf in runs:
            if conf["mode"] == "changes":
                _say("\n== the source changes days already loaded ==")
                for line in demo_data.change_loaded_days(stack.source_dsn):
                    _say(f"  {line}")
            _say(f"\n== {title}: dag.test(logical_date={logical_date:%Y-%m-%d}, conf={conf}) ==")
            # Every param explicitly: dag.test() merges a run's conf into this DAG object's params.
            dag_run = dag.test(logical_date=logical_date, run_conf=DEFAULT_PARAMS | conf)
            ok = _print_run(dag_run) and ok
        _say("\n== per-user totals, the reference query on both engines ==")
        _say(_side_by_side(window_end=runs[-1][1]))
        _say(f"\ndemo finished in {time.perf_counter() - started:.0f}s: {'PASSED' if ok else 'FAILED'}")
        return 0 if ok else 1
    finally:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=int(os.environ.get("DEMO_ROWS", 300_000)))
    return run(parser.parse_args().rows)


if __name__ == "__main__":
    sys.exit(main())
