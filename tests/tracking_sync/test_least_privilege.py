"""Each grant of the grant scripts, revoked one at a time: the run fails at once, naming it.

For each statement of include/sql/postgres/grants/source_role.sql and
include/sql/redshift/grants/pipeline_user.sql, a role made from the script WITHOUT that
statement (devstack.grants: the same files a deployment runs) runs the plan_run task's code:
it fails in plan_run, before any data moves, with AccessRefused whose first line quotes the
statement; and the retry policy fails it without a retry. One run through dag.test() with
the DAG's own retries shows the same in a real run, in under a minute.

Needs more than the pipeline's roles (says so): the administrator revokes PUBLIC's default
CONNECT, TEMP and USAGE on public for the module (otherwise a role keeps them through
PUBLIC), and drops the capture's publication for its one case; all restored afterwards.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from airflow.sdk import RetryAction

from devstack.grants import (
    PUBLICATION,
    REDSHIFT_USER,
    SOURCE_ROLE,
    create_redshift_user,
    create_source_role,
    drop_role,
    redshift_user_statements,
    run_statements,
    source_role_statements,
)
from devstack.stack import REDSHIFT_USER_PASSWORD, SOURCE_DATABASE, SOURCE_ROLE_PASSWORD
from tracking_sync.core.errors import AccessRefused
from tracking_sync.oncall.failures import RETRY_POLICY

START, END = datetime(2031, 2, 1, tzinfo=UTC), datetime(2031, 2, 2, tzinfo=UTC)


def _admin(dsn: str, *statements: str) -> None:
    run_statements(dsn, statements)


@pytest.fixture(scope="module")
def without_public_defaults(stack):
    """PUBLIC's default CONNECT/TEMP on the databases and USAGE on public, revoked (the
    administrator's hardening): what a role holds is then only what its script granted."""
    source, backend = stack.source_dsn, stack.redshift.backend_dsn()
    database = stack.redshift.database
    _admin(
        source,
        f"revoke connect, temp on database {SOURCE_DATABASE} from public",
        "revoke usage on schema public from public",
    )
    _admin(backend, f'revoke temp on database "{database}" from public')
    try:
        yield
    finally:
        _admin(
            source,
            f"grant connect, temp on database {SOURCE_DATABASE} to public",
            "grant usage on schema public to public",
        )
        _admin(backend, f'grant temp on database "{database}" to public')


def _run_plan_run(schema: str):
    """What the plan_run task runs (its own function, refusals translated at its boundary):
    the run plan it pushes as XCom "plan"."""
    from tracking_sync.core.names import PLAN_XCOM_KEY
    from tracking_sync.tasks import plan_run

    pushed: dict = {}
    dag_run = SimpleNamespace(run_id=f"manual__{schema}", run_type="manual", conf={}, run_after=END)
    plan_run.function(
        params={"mode": "incremental", "target_schema": schema, "validation": "scoped", "partitions": None},
        dag_run=dag_run,
        data_interval_start=START,
        data_interval_end=END,
        ti=SimpleNamespace(xcom_push=lambda key, value: pushed.__setitem__(key, value)),
    )
    return pushed[PLAN_XCOM_KEY]


def _conn_env(
    monkeypatch,
    stack,
    *,
    source=(SOURCE_ROLE, SOURCE_ROLE_PASSWORD),
    redshift=(REDSHIFT_USER, REDSHIFT_USER_PASSWORD),
):
    import json

    pg, rs = stack.postgres, stack.redshift
    monkeypatch.setenv(
        "AIRFLOW_CONN_POSTGRES_SOURCE",
        f"postgres://{source[0]}:{source[1]}@{pg.host}:{pg.port}/{SOURCE_DATABASE}",
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_REDSHIFT_DEFAULT",
        json.dumps(
            {
                "conn_type": "redshift",
                "host": rs.host,
                "port": rs.port,
                "login": redshift[0],
                "password": redshift[1],
                "schema": rs.database,
                "extra": {"ssl": False},
            }
        ),
    )


def _case_id(statement: str) -> str:
    words = statement.replace("$$", "").split()
    return "create publication" if "publication" in words else " ".join(words[:4])


SOURCE_CASES = range(len(source_role_statements("role", "db")))
REDSHIFT_CASES = range(len(redshift_user_statements("user", "db")))


def _as_quoted(statement: str, role: str, database: str) -> str:
    """The statement as the failure quotes it: the role and database unquoted, one line; a
    publication's CREATE out of its DO block."""
    if "create publication" in statement:
        return f"create publication {PUBLICATION} for table public.action"
    return " ".join(statement.split()).replace(f'"{role}"', role).replace(f'"{database}"', database)


def _fails_at_once_naming(expected: str, schema: str) -> None:
    started = time.monotonic()
    with pytest.raises(AccessRefused) as raised:
        _run_plan_run(schema)
    first_line = str(raised.value).splitlines()[0]
    assert expected.lower() in first_line.lower(), first_line
    assert RETRY_POLICY.evaluate(raised.value, try_number=1, max_tries=4).action == RetryAction.FAIL
    assert time.monotonic() - started < 60


@pytest.mark.parametrize(
    "index", SOURCE_CASES, ids=[_case_id(s) for s in source_role_statements("role", "db")]
)
def test_each_source_grant_left_out_fails_plan_run_naming_it(
    index, stack, stack_env, without_public_defaults, target_schema_of_test, monkeypatch
):
    role, password = f"reader_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    left_out = source_role_statements(role, SOURCE_DATABASE)[index]
    publication_case = "create publication" in left_out
    if publication_case:  # it exists since the stack started: gone for this case
        _admin(stack.source_dsn, f"drop publication if exists {PUBLICATION}")
    try:
        create_source_role(stack.source_dsn, role, password, SOURCE_DATABASE, without=(left_out,))
        _conn_env(monkeypatch, stack, source=(role, password))
        _fails_at_once_naming(_as_quoted(left_out, role, SOURCE_DATABASE), target_schema_of_test)
    finally:
        if publication_case:
            _admin(stack.source_dsn, f"create publication {PUBLICATION} for table public.action")
        drop_role(stack.source_dsn, role)


@pytest.mark.parametrize(
    "index", REDSHIFT_CASES, ids=[_case_id(s) for s in redshift_user_statements("user", "db")]
)
def test_each_redshift_grant_left_out_fails_plan_run_naming_it(
    index, stack, stack_env, without_public_defaults, target_schema_of_test, monkeypatch
):
    user, password = f"loader_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    backend, database = stack.redshift.backend_dsn(), stack.redshift.database
    left_out = redshift_user_statements(user, database)[index]
    try:
        create_redshift_user(backend, user, password, database, without=(left_out,))
        _conn_env(monkeypatch, stack, redshift=(user, password))
        _fails_at_once_naming(_as_quoted(left_out, user, database), target_schema_of_test)
    finally:
        drop_role(backend, user)


def test_every_missing_privilege_is_named_in_one_failure(
    stack, stack_env, without_public_defaults, target_schema_of_test, monkeypatch
):
    role, password = f"reader_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    user = f"loader_{uuid.uuid4().hex[:8]}"
    backend, database = stack.redshift.backend_dsn(), stack.redshift.database
    create_source_role(
        stack.source_dsn, role, password, SOURCE_DATABASE, without=("usage", "select", "temp", "alter role")
    )
    create_redshift_user(backend, user, password, database, without=("temp",))
    _conn_env(monkeypatch, stack, source=(role, password), redshift=(user, password))
    try:
        with pytest.raises(AccessRefused) as raised:
            _run_plan_run(target_schema_of_test)
        lines = str(raised.value).splitlines()
        assert "(5 more below)" in lines[0] and "nothing has moved yet" in lines[0]
        named = "\n".join(lines)
        for grant in (
            f"grant usage on schema public to {role}",
            f"grant select on public.action, public.action_type to {role}",
            f"grant temp on database {SOURCE_DATABASE} to {role}",
            f"alter role {role} with replication",
            f"{user} lacks TEMP on database {database}",
        ):
            assert grant in named, named
    finally:
        drop_role(stack.source_dsn, role)
        drop_role(backend, user)


def test_with_every_grant_plan_run_passes_the_preflight(
    stack, stack_env, without_public_defaults, target_schema_of_test, monkeypatch
):
    """The scripts are enough: the stack's own roles plan a run (the test cannot pass by
    refusing everything)."""
    _conn_env(monkeypatch, stack)
    plan = _run_plan_run(target_schema_of_test)
    assert plan["target_schema"] == target_schema_of_test


def test_a_real_run_with_the_dags_retries_fails_in_plan_run_at_once(
    stack, stack_env, airflow_db, without_public_defaults, target_schema_of_test, monkeypatch, tmp_path
):
    """dag.test() with the DAG's own retries (3, 2 minutes apart): the refused privilege
    fails plan_run on its first try (the retry policy), the rest never runs, in under a minute."""
    from tests.dag_helpers import load_dag, run_dag

    role, password = f"reader_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    create_source_role(stack.source_dsn, role, password, SOURCE_DATABASE, without=("grant select",))
    _conn_env(monkeypatch, stack, source=(role, password))
    monkeypatch.setenv("TRACKING_SYNC_PREFIX", f"least-privilege-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("TRACKING_SYNC_STAGING_DIR", str(tmp_path / "staging"))
    try:
        dag = load_dag(retries=3)
        started = time.monotonic()
        run = run_dag(
            dag,
            logical_date=datetime(2031, 3, 1, tzinfo=UTC),
            conf={"target_schema": target_schema_of_test},
            expect="failed",
        )
        assert time.monotonic() - started < 60
        instances = {ti.task_id: ti for ti in run.get_task_instances()}
        assert instances["plan_run"].state == "failed"
        assert instances["plan_run"].try_number == 1
        assert {ti.state for task_id, ti in instances.items() if task_id != "plan_run"} == {"upstream_failed"}
    finally:
        drop_role(stack.source_dsn, role)


def test_the_providers_copy_operator_fails_at_once_naming_the_table(stack, stack_env, airflow_db):
    """The load tasks are the provider's S3ToRedshiftOperator: a table made by another user
    (the pipeline's user may not DELETE from it) fails the load at once, naming it."""
    from tracking_sync.core.names import AWS_CONN_ID, REDSHIFT_CONN_ID
    from tracking_sync.load.copy import COPY_OPTIONS
    from tracking_sync.operators import ReportingS3ToRedshiftOperator

    schema = f"lp_{uuid.uuid4().hex[:8]}"
    backend = stack.redshift.backend_dsn()
    _admin(
        backend,
        f"create schema {schema}",
        f"grant usage, create on schema {schema} to {REDSHIFT_USER}",
        f"create table {schema}.action_type (id integer)",
    )
    try:
        load = ReportingS3ToRedshiftOperator(
            task_id="load_action_type",
            redshift_conn_id=REDSHIFT_CONN_ID,
            aws_conn_id=AWS_CONN_ID,
            schema=schema,
            table="action_type",
            source_table="action_type",
            s3_bucket=stack.s3.bucket,
            s3_key=f"{schema}/action_type/manifest.json",
            copy_options=COPY_OPTIONS,
            method="REPLACE",
        )
        with pytest.raises(AccessRefused) as raised:
            load.execute(context={})
        first_line = str(raised.value).splitlines()[0]
        assert f"Redshift refused {REDSHIFT_USER} a privilege on table action_type" in first_line
        assert f"OWNER TO {REDSHIFT_USER}" in first_line
        assert raised.value.__cause__.args[0]["C"] == "42501"
        assert RETRY_POLICY.evaluate(raised.value, try_number=1, max_tries=4).action == RetryAction.FAIL
    finally:
        _admin(backend, f"drop schema {schema} cascade")
