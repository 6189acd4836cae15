"""Fault-suite fixtures: the same real DAG, stack and connections as the end-to-end tests."""

from tests.e2e.conftest import pipeline_dag, pipeline_env, source, target  # noqa: F401
