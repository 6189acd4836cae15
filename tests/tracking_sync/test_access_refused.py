"""A refused privilege or login fails at once, naming the grant; errors that heal keep retrying.

The errors are the drivers' own classes with the state the driver gives them (psycopg2's
pgcode, redshift_connector's ErrorResponse dict, botocore's error response).
"""

from __future__ import annotations

import boto3.exceptions
import botocore.exceptions
import psycopg
import psycopg2
import psycopg2.errors
import pytest
import redshift_connector
from airflow.sdk import RetryAction

from tracking_sync.core.errors import AccessRefused, LoadRejected
from tracking_sync.oncall.failures import RETRY_POLICY
from tracking_sync.oncall.refusals import (
    find_refusal,
    refusal_message,
    refusals_fail_at_once,
)


def _psycopg2(cls, message: str, code: str):
    error = cls(message)
    error.__setstate__({"pgerror": f"ERROR:  {message}", "pgcode": code, "cursor": None})
    return error


def _redshift(cls, message: str, code: str):
    return cls({"S": "ERROR", "C": code, "M": message, "F": "aclchk.c"})


def _client_error(code: str, operation: str = "PutObject"):
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": code}}, operation)


REFUSALS = {
    "psycopg2 42501": _psycopg2(
        psycopg2.errors.InsufficientPrivilege, "permission denied for table action", "42501"
    ),
    "psycopg2 refused login (no pgcode)": psycopg2.OperationalError(
        'connection to server at "127.0.0.1", port 5432 failed: FATAL:  password '
        'authentication failed for user "tracking_reader"\n'
    ),
    "psycopg 42501": psycopg.errors.InsufficientPrivilege("permission denied for schema public"),
    "redshift_connector 42501": _redshift(
        redshift_connector.ProgrammingError, "permission denied for relation action", "42501"
    ),
    "redshift_connector 28000": _redshift(
        redshift_connector.InterfaceError, 'no pg_hba.conf entry for user "loader"', "28000"
    ),
    "redshift_connector 28P01": _redshift(
        redshift_connector.ProgrammingError, 'password authentication failed for user "loader"', "28P01"
    ),
    "S3 AccessDenied": _client_error("AccessDenied"),
    "S3 unknown key id": _client_error("InvalidAccessKeyId", "ListObjectsV2"),
    "boto3 upload AccessDenied": boto3.exceptions.S3UploadFailedError(
        "Failed to upload /tmp/part-0000 to b/k: An error occurred (AccessDenied) when calling "
        "the PutObject operation: Access Denied"
    ),
    "COPY role refused by S3": _redshift(
        redshift_connector.ProgrammingError,
        "S3ServiceException:Access Denied,Status 403,Error AccessDenied",
        "XX000",
    ),
}

HEALING = {
    "connection lost": psycopg2.OperationalError("server closed the connection unexpectedly"),
    "psycopg2 40001": _psycopg2(psycopg2.errors.SerializationFailure, "could not serialize access", "40001"),
    "redshift_connector 40001": _redshift(
        redshift_connector.ProgrammingError, "Serializable isolation violation on table", "40001"
    ),
    "redshift_connector dropped": redshift_connector.InterfaceError("communication error"),
    "S3 throttling": _client_error("SlowDown"),
    "S3 503": _client_error("ServiceUnavailable"),
    "endpoint down": botocore.exceptions.EndpointConnectionError(endpoint_url="http://s3"),
}


@pytest.mark.parametrize("error", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_refused_privilege_or_login_fails_at_once(error):
    assert find_refusal(error) is not None
    decision = RETRY_POLICY.evaluate(error, try_number=1, max_tries=4)
    assert decision.action == RetryAction.FAIL
    assert "a retry cannot grant it" in decision.reason


@pytest.mark.parametrize("error", HEALING.values(), ids=HEALING.keys())
def test_errors_that_heal_keep_retrying(error):
    assert find_refusal(error) is None
    assert RETRY_POLICY.evaluate(error, try_number=1, max_tries=4).action != RetryAction.FAIL


def test_a_refusal_behind_a_wrapping_error_is_found():
    try:
        try:
            raise REFUSALS["redshift_connector 42501"]
        except Exception as cause:
            raise RuntimeError("publish failed") from cause
    except RuntimeError as wrapped:
        assert find_refusal(wrapped).object == "table action"


def test_the_message_names_role_object_privilege_and_the_grant_from_the_script():
    refusal = find_refusal(REFUSALS["psycopg2 42501"])
    message = refusal_message(refusal, "tracking_reader", "tracking")
    assert message.startswith("the source (PostgreSQL) refused tracking_reader a privilege on table action")
    assert "grant select on public.action, public.action_type to tracking_reader" in message
    assert "include/sql/postgres/grants/source_role.sql" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "words, grant",
    [
        ("permission denied for schema public", "grant usage on schema public to tracking_reader"),
        ("permission denied to use replication slots", "alter role tracking_reader with replication"),
        (
            "must be superuser or replication role to use replication slots",
            "alter role tracking_reader with replication",
        ),
        (
            'permission denied to create temporary tables in database "tracking"',
            "grant temp on database tracking to tracking_reader",
        ),
    ],
)
def test_each_source_refusal_quotes_its_grant(words, grant):
    message = refusal_message(
        find_refusal(_psycopg2(psycopg2.errors.InsufficientPrivilege, words, "42501")),
        "tracking_reader",
        "tracking",
    )
    assert grant in message
    assert message.count("tracking_reader") == 2, message  # who, and that grant: no other


def test_connect_and_ownership_refusals_quote_their_statement():
    connect = psycopg2.OperationalError(
        'connection to server at "127.0.0.1", port 5432 failed: FATAL:  permission denied for '
        'database "tracking"\nDETAIL:  User does not have CONNECT privilege.\n'
    )
    message = refusal_message(find_refusal(connect), "tracking_reader", "tracking")
    assert "privilege on database tracking" in message
    assert "grant connect on database tracking to tracking_reader" in message
    owner = _psycopg2(psycopg2.errors.InsufficientPrivilege, "must be owner of table action", "42501")
    message = refusal_message(find_refusal(owner), "tracking_reader", "tracking")
    assert "create publication tracking_sync_action for table public.action" in message
    assert "grant select" not in message


def test_redshift_create_schema_refusal_quotes_the_create_grant():
    message = refusal_message(
        find_refusal(
            _redshift(redshift_connector.ProgrammingError, "permission denied for database dev", "42501")
        ),
        "loader",
        "dev",
    )
    assert "Redshift refused loader a privilege on database dev" in message
    assert "grant create on database dev to loader" in message
    assert "grant temp" not in message
    assert "include/sql/redshift/grants/pipeline_user.sql" in message


def test_redshift_schema_refusal_grants_create_back_or_gives_the_schema_to_the_user():
    """The user owns the schema it created: its CREATE revoked, the GRANT gives it back (an
    ALTER ... OWNER TO to the owner it is already would change nothing); a schema another
    user made, the ALTER."""
    message = refusal_message(
        find_refusal(
            _redshift(redshift_connector.ProgrammingError, "permission denied for schema tracking", "42501")
        ),
        "loader",
        "dev",
    )
    assert "Redshift refused loader a privilege on schema tracking" in message
    assert "GRANT USAGE, CREATE ON SCHEMA tracking TO loader" in message
    assert "ALTER SCHEMA tracking OWNER TO loader" in message


def test_login_s3_and_copy_role_messages_say_where_the_fix_is():
    login = refusal_message(find_refusal(REFUSALS["psycopg2 refused login (no pgcode)"]), "tracking_reader")
    assert "refused the login of tracking_reader" in login and "postgres_source" in login
    s3 = refusal_message(find_refusal(REFUSALS["S3 AccessDenied"]), "arn:aws:iam::1:role/dag")
    assert "arn:aws:iam::1:role/dag" in s3 and "docs/iam/dag-s3-policy.json" in s3
    copy = refusal_message(find_refusal(REFUSALS["COPY role refused by S3"]), "loader")
    assert "docs/iam/redshift-copy-role-policy.json" in copy


def test_the_task_boundary_raises_access_refused_from_the_drivers_error():
    @refusals_fail_at_once
    def task_body():
        raise REFUSALS["redshift_connector 42501"]

    with pytest.raises(AccessRefused, match="refused .* a privilege on table action") as raised:
        task_body()
    assert raised.value.__cause__ is REFUSALS["redshift_connector 42501"]

    @refusals_fail_at_once
    def rejected():
        raise LoadRejected("a row")

    with pytest.raises(LoadRejected):  # the pipeline's own errors pass through as they are
        rejected()


def test_a_redshift_table_refusal_names_the_table_in_the_runs_schema():
    """Redshift names the table without its schema; the fix an administrator runs from a
    session of their own (search_path "$user", public) must name it whole to work as printed."""
    owner = find_refusal(
        _redshift(redshift_connector.ProgrammingError, "must be owner of relation action", "42501")
    )
    assert "ALTER TABLE tracking.action OWNER TO loader" in refusal_message(
        owner, "loader", "dev", "tracking"
    )
    assert "ALTER TABLE action OWNER TO loader" in refusal_message(owner, "loader", "dev")  # schema unknown

    @refusals_fail_at_once
    def task_body(plan):
        raise _redshift(redshift_connector.ProgrammingError, "permission denied for relation action", "42501")

    with pytest.raises(AccessRefused) as raised:
        task_body({"target_schema": "analytics", "mode": "incremental"})
    assert "ALTER TABLE analytics.action OWNER TO" in str(raised.value)
