"""Policy checks over every DAG file in dags/: each file is its own test id."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))


class NetworkAtParseTime(AssertionError):
    pass


@pytest.fixture
def no_io_at_parse_time(monkeypatch):
    """Any socket connect or connection lookup while a DAG file is parsed fails the test."""

    def refuse(*args, **kwargs):
        raise NetworkAtParseTime(f"DAG file touched the network at parse time: {args[1:]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from airflow.sdk import BaseHook

    def no_connection(*args, **kwargs):
        raise NetworkAtParseTime(f"DAG file looked up a connection at parse time: {args!r}")

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(no_connection))


def test_there_are_dag_files():
    assert DAG_FILES, f"no DAG files in {DAGS_DIR}"


@pytest.fixture(params=DAG_FILES, ids=[p.name for p in DAG_FILES])
def dag_bag(request, no_io_at_parse_time):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(request.param))
    assert not bag.import_errors, f"{request.param.name} failed to import: {bag.import_errors}"
    assert bag.dags, f"{request.param.name} defines no DAG"
    return bag


def test_dag_file_policy(dag_bag):
    for dag_id, dag in dag_bag.dags.items():
        assert dag.owner and dag.owner != "airflow", f"{dag_id}: set a real owner in default_args"
        assert dag.tags, f"{dag_id}: add tags"
        assert dag.default_args.get("retries", 0) >= 2, f"{dag_id}: default_args retries must be >= 2"
        assert dag.catchup is False, f"{dag_id}: catchup must be off"
        assert dag.doc_md and dag.doc_md.strip(), f"{dag_id}: doc_md (the runbook) must be set"
        # doc_md="<path>.md" is read by Airflow; a path it did not find stays as the docs.
        unread = dag.doc_md.strip().endswith(".md") and "\n" not in dag.doc_md.strip()
        assert not unread, f"{dag_id}: doc_md is the path {dag.doc_md!r}: Airflow did not find it"
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id}: retries must be >= 2"
