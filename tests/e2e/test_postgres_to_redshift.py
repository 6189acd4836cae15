"""The DAG end to end with dag.test() on the local PostgreSQL, S3 and Redshift stand-in."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from devstack.stack import REDSHIFT_USER_PASSWORD, SOURCE_ROLE_PASSWORD
from tests.dag_helpers import run_dag
from tests.pipeline_helpers import (
    LONG_MULTIBYTE_QUERY,
    assert_same_rows,
    change_source_within,
    fetch_rows,
    insert_actions,
    source_rows,
    target_rows,
    tricky_actions,
)

pytestmark = pytest.mark.integration

FULL_REFRESH = {"mode": "full_refresh"}


def day(n: int) -> datetime:
    """Midnight UTC of 2025-03-0n; a nightly run for day n has logical date day(n + 1)."""
    return datetime(2025, 3, n, tzinfo=UTC)


def test_full_refresh_nightly_runs_rerun_and_backfill_match_the_source(pipeline_dag, stack, source, target):
    from devstack.demo_data import generate

    generate(stack.source_dsn, rows=20_000, seed=7)
    run_dag(pipeline_dag, logical_date=day(2), conf=FULL_REFRESH)
    assert_same_rows(source_rows(source), target_rows(target), "after the full refresh")

    for n in (3, 4, 5):  # nightly runs, each after the source changed inside its day
        change_source_within(source, day(n))
        run = run_dag(pipeline_dag, logical_date=day(n + 1))
        assert (run.data_interval_start, run.data_interval_end) == (day(n), day(n + 1))
    assert_same_rows(source_rows(source), target_rows(target), "after nightly runs")

    change_source_within(source, day(4))  # a rerun of one interval picks up the change
    run_dag(pipeline_dag, logical_date=day(5))
    run_dag(pipeline_dag, logical_date=day(5))  # and rerunning again changes nothing
    assert_same_rows(source_rows(source), target_rows(target), "after rerunning 03-04")

    for n in (10, 11, 12):  # a backfill is one run per interval of the range
        change_source_within(source, day(n))
    for n in (10, 11, 12):
        run_dag(pipeline_dag, logical_date=day(n + 1))
    assert_same_rows(source_rows(source), target_rows(target), "after the backfill")
    staging = fetch_rows(target, "select tablename from pg_tables where tablename like 'action_staging%%'")
    assert staging == [], "every staging table is dropped by its publish"


def test_tricky_values_survive_the_round_trip(pipeline_dag, source, target):
    with source.cursor() as cursor:
        cursor.execute("truncate action")
    source.commit()
    insert_actions(source, tricky_actions())
    run_dag(pipeline_dag, logical_date=day(2), conf=FULL_REFRESH)
    assert_same_rows(source_rows(source), target_rows(target), "tricky rows")
    (length,) = fetch_rows(
        target, "select octet_length(query) from tracking.action where query = %s", (LONG_MULTIBYTE_QUERY,)
    )[0]
    assert length == 60_000
    # The session crossing midnight is split between two nightly intervals and still whole.
    run_dag(pipeline_dag, logical_date=day(2))
    run_dag(pipeline_dag, logical_date=day(3))
    assert_same_rows(source_rows(source), target_rows(target), "tricky rows, nightly")


def test_a_failed_copy_leaves_the_target_unchanged_and_names_file_and_line(
    pipeline_dag, source, target, capfd
):
    with source.cursor() as cursor:
        cursor.execute("truncate action")
    source.commit()
    insert_actions(source, tricky_actions())
    run_dag(pipeline_dag, logical_date=day(2), conf=FULL_REFRESH)
    before = target_rows(target)
    # 70,000 bytes do not fit VARCHAR(65535): the COPY of the staging table fails.
    insert_actions(
        source, [(900, 1000, "s", 8, datetime(2025, 3, 1, 13), None, None, None, False, "x" * 70_000)]
    )
    capfd.readouterr()
    run_dag(pipeline_dag, logical_date=day(2), expect="failed")
    log = capfd.readouterr().out
    assert target_rows(target) == before
    # What on-call reads: the source row's id, the column, the limit, Redshift's reason and
    # code, a short preview, and the file and line it came from.
    assert re.search(
        r"action row id 900, column query \(limit 65535 bytes\): String length exceeds DDL "
        r"length.*\[code 1204\]; value 'x{60}'\.\.\. .*file s3://\S+/action/\w+/part-0000\.csv\.zst line \d+",
        log,
    ), log[-3000:]
    assert "the target is unchanged" in log
    with source.cursor() as cursor:
        cursor.execute("delete from action where id = 900")
    source.commit()


def test_no_secret_in_task_logs_xcom_or_rendered_fields(pipeline_dag, stack, capfd, caplog):
    """The aws secret key and both passwords never reach a task log, an XCom or the UI.

    The COPY goes the keys path here (aws_default has no role_arn), so its statement
    does carry the secret; the log line must show it redacted.
    """
    import os
    from pathlib import Path

    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    secrets = {
        "the aws secret key": stack.s3.secret_access_key,
        "the PostgreSQL password": stack.postgres.password,
        "the Redshift password": stack.redshift.password,
        # what the tasks connect with: the grant scripts' roles (devstack.stack)
        "the source role's password": SOURCE_ROLE_PASSWORD,
        "the Redshift user's password": REDSHIFT_USER_PASSWORD,
    }

    capfd.readouterr()
    run = run_dag(pipeline_dag, logical_date=day(2))
    captured = capfd.readouterr()
    log_files = [p for p in Path(os.environ["AIRFLOW_HOME"], "logs").rglob("*") if p.is_file()]
    places = {
        "stdout/stderr of the run": captured.out + captured.err,
        "stdlib log records": caplog.text,
        **{f"log file {p}": p.read_text(errors="replace") for p in log_files},
    }
    with create_session() as session:
        xcoms = session.query(XComModel).filter(XComModel.run_id == run.run_id).all()
        rendered = (
            session.query(RenderedTaskInstanceFields)
            .filter(RenderedTaskInstanceFields.run_id == run.run_id)
            .all()
        )
        places["XComs"] = json.dumps({x.task_id: x.value for x in xcoms}, default=str)
        places["rendered template fields"] = json.dumps(
            {r.task_id: r.rendered_fields for r in rendered}, default=str
        )
    assert xcoms, "the run pushed XComs"
    assert {"load_action_type", "load_action_staging"} <= {r.task_id for r in rendered}

    statement_logged = places["stdout/stderr of the run"]
    assert "Running statement" in statement_logged and "COPY" in statement_logged
    assert "aws_secret_access_key=***" in statement_logged, "the COPY's secret shows redacted"
    for what, secret in secrets.items():
        for place, text in places.items():
            assert secret not in text, f"{what} appeared in {place}"
