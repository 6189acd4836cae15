"""Leftovers do not pile up: staging tables of killed runs and S3 prefixes past retention."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.dag_helpers import run_dag
from tests.pipeline_helpers import fetch_rows

pytestmark = pytest.mark.integration


def day(n: int) -> datetime:
    return datetime(2025, 3, n, tzinfo=UTC)


@pytest.fixture
def loaded(pipeline_dag, stack, source, target):
    from devstack.demo_data import generate

    generate(stack.source_dsn, rows=2_000, seed=5, users=40, period_start="2025-03-01", period_days=7)
    run_dag(pipeline_dag, logical_date=day(8), conf={"mode": "full_refresh"})
    return pipeline_dag


def _staging_tables(target) -> list[str]:
    rows = fetch_rows(
        target,
        "select tablename from pg_tables where schemaname = 'tracking' and tablename like 'action_staging%%'",
    )
    return sorted(name for (name,) in rows)


def test_the_next_run_drops_staging_tables_a_killed_run_left(loaded, target):
    with target.cursor() as cursor:
        # what a run killed after its load_action_staging leaves behind, and a table of someone else's
        cursor.execute("create table tracking.action_staging_20250210t000000_20250211t000000 (id integer)")
        cursor.execute("create table tracking.action_staging_notes (id integer)")
    target.commit()

    run = run_dag(loaded, logical_date=day(4))

    assert _staging_tables(target) == ["action_staging_notes"], "only the pipeline's own leftovers go"
    # create_schema swept them (the run was alone) and says which, for on-call.
    (schema_ti,) = [ti for ti in run.get_task_instances() if ti.task_id == "create_schema"]
    swept = schema_ti.xcom_pull(task_ids="create_schema")
    assert swept == ["action_staging_20250210t000000_20250211t000000"], swept
    with target.cursor() as cursor:
        cursor.execute("drop table tracking.action_staging_notes")
    target.commit()


def test_s3_prefixes_past_retention_are_removed_by_a_later_upload(loaded, stack, pipeline_env, monkeypatch):
    s3, bucket, prefix = stack.s3.client(), stack.s3.bucket, pipeline_env["TRACKING_SYNC_PREFIX"]
    old = f"{prefix}/action/20250220t000000_20250221t000000/"
    recent = f"{prefix}/action/20250301t000000_20250302t000000/"
    for key in (old + "part-0000.csv.zst", old + "manifest.json", recent + "part-0000.csv.zst"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    monkeypatch.setenv("TRACKING_SYNC_RETENTION_DAYS", "7")

    run_dag(loaded, logical_date=day(4))  # the interval [03-03, 03-04): horizon 02-25

    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/action/")["Contents"]}
    assert not any(key.startswith(old) for key in keys), "an interval past retention is removed"
    assert recent + "part-0000.csv.zst" in keys, "an interval inside retention stays"
    assert any("/full_refresh/" in key for key in keys), "the full refresh's prefix is reused, not expired"
