"""A real refused privilege: a source role made from the grant script without its SELECT
grant runs a stage step, and the task fails at once naming the role, the table and the grant."""

from __future__ import annotations

import uuid
from contextlib import closing

import pytest
from airflow.sdk import RetryAction

from devstack.grants import create_source_role, drop_role
from devstack.stack import SOURCE_DATABASE
from tracking_sync.core.errors import AccessRefused
from tracking_sync.core.tables import ACTION
from tracking_sync.oncall.failures import RETRY_POLICY
from tracking_sync.oncall.refusals import refusals_fail_at_once


@pytest.fixture
def role_without_select(stack, monkeypatch):
    role, password = f"refused_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = stack.postgres.dsn(SOURCE_DATABASE)
    create_source_role(admin, role, password, SOURCE_DATABASE, without=("grant select",))
    host, port = stack.postgres.host, stack.postgres.port
    monkeypatch.setenv(
        "AIRFLOW_CONN_POSTGRES_SOURCE", f"postgres://{role}:{password}@{host}:{port}/{SOURCE_DATABASE}"
    )
    try:
        yield role
    finally:
        drop_role(admin, role)


def test_a_refused_select_fails_at_once_naming_role_table_and_grant(role_without_select):
    from tracking_sync.connections import source_connection
    from tracking_sync.extract.partitions import plan_partitions

    @refusals_fail_at_once
    def cut_action():  # what plan_run runs to cut a partitioned full refresh's export
        with closing(source_connection()) as connection:
            return plan_partitions(connection, ACTION, n=2)

    with pytest.raises(AccessRefused) as raised:
        cut_action()
    first_line = str(raised.value).splitlines()[0]
    role = role_without_select
    assert f"refused {role} a privilege on table action" in first_line
    assert f"grant select on public.action, public.action_type to {role}" in first_line
    assert raised.value.__cause__.pgcode == "42501"
    decision = RETRY_POLICY.evaluate(raised.value, try_number=1, max_tries=4)
    assert decision.action == RetryAction.FAIL
