"""Refusals: the source, Redshift or S3 refusing the pipeline's role a privilege or a login.

No retry can grant a privilege or fix a password, so these fail the task at once, on every
task (the retry policy in tracking_sync.oncall.failures asks `find_refusal`), with a first
line that names the role, the object, the privilege and the grant that fixes it, quoted from
the grant scripts (include/sql/postgres/grants/source_role.sql,
include/sql/redshift/grants/pipeline_user.sql, docs/iam/). What they recognise:

    SQLSTATE 42501 (insufficient privilege) and class 28 (invalid authorization: a wrong
    password, an unknown role, no pg_hba entry), from psycopg2 (pgcode), psycopg (sqlstate)
    and redshift_connector (the error's dict, key 'C'); psycopg2 reports a refused login
    without a code, so its FATAL wording is matched too;
    S3's AccessDenied (and a key it does not know, a wrong signature), from botocore
    (the error code) and boto3's transfers (which put it in their message);
    a COPY whose IAM role may not read the files (Redshift's S3ServiceException 403, or a
    role it may not assume).

Errors that can heal -- a dropped connection, 40001 serialization, S3 throttling -- are not
refusals: they keep their retries.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from tracking_sync.core.errors import AccessRefused, NeedsFix

SOURCE, REDSHIFT, S3 = "source", "redshift", "s3"
SOURCE_GRANTS = "postgres/grants/source_role.sql"
REDSHIFT_GRANTS = "redshift/grants/pipeline_user.sql"
DAG_S3_POLICY = "docs/iam/dag-s3-policy.json"
COPY_ROLE_POLICY = "docs/iam/redshift-copy-role-policy.json"

INSUFFICIENT_PRIVILEGE = "42501"
INVALID_AUTHORIZATION_CLASS = "28"
S3_REFUSALS = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
    }
)
# psycopg2 raises a refused login as a bare OperationalError (no pgcode): its FATAL words.
_LOGIN_WORDS = re.compile(
    r"password authentication failed|no pg_hba\.conf entry|role \"[^\"]+\" does not exist|"
    r"is not permitted to log in",
    re.IGNORECASE,
)
_S3_WORDS = re.compile(r"\((" + "|".join(sorted(S3_REFUSALS)) + r")\)")
# Redshift's COPY when its IAM role may not read the files or may not be assumed.
_COPY_ROLE_WORDS = re.compile(
    r"S3ServiceException:\s*Access Denied|Status 403|not authorized to (?:assume|get credentials)",
    re.IGNORECASE,
)
_OBJECT = re.compile(
    r"(?:permission denied for|must be owner of) "
    r"(table|relation|schema|database|function|sequence|view|materialized view) \"?([\w.$]+)\"?",
    re.IGNORECASE,
)
_TEMPORARY = re.compile(r"create temporary tables in database \"?(\w+)\"?", re.IGNORECASE)
_REPLICATION = re.compile(r"replication (?:role|slots)|REPLICATION attribute", re.IGNORECASE)


@dataclass(frozen=True)
class Refusal:
    system: str  # SOURCE, REDSHIFT or S3
    code: str  # the SQLSTATE, or S3's error code
    words: str  # the server's first line
    login: bool = False  # a refused login (class 28), not a privilege
    copy_role: bool = False  # S3 refused the role Redshift's COPY assumes

    @property
    def object(self) -> str | None:
        """What was refused, as the server named it: "table action", "schema tracking"..."""
        if self.copy_role:
            return "the S3 files COPY reads"
        if _REPLICATION.search(self.words):
            return "replication slots"
        temporary = _TEMPORARY.search(self.words)
        if temporary:
            return f"database {temporary.group(1)} (temporary tables)"
        found = _OBJECT.search(self.words)
        if found:
            kind = "table" if found.group(1).lower() == "relation" else found.group(1).lower()
            return f"{kind} {found.group(2)}"
        return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _system(error: BaseException) -> str | None:
    module = type(error).__module__.split(".")[0]
    return {
        "psycopg2": SOURCE,
        "psycopg": SOURCE,
        "redshift_connector": REDSHIFT,
        "botocore": S3,
        "boto3": S3,
        "s3transfer": S3,
    }.get(module)


def _sqlstate(error: BaseException) -> str | None:
    code = getattr(error, "pgcode", None) or getattr(error, "sqlstate", None)
    if code:
        return str(code)
    first = error.args[0] if error.args else None
    return first.get("C") if isinstance(first, dict) else None


def _words(error: BaseException) -> str:
    first = error.args[0] if error.args else None
    if isinstance(first, dict):  # redshift_connector: the ErrorResponse's fields
        return first.get("M", "")
    text = str(error).strip()
    # psycopg2: 'connection to server at ... failed: FATAL:  password authentication failed'
    return re.sub(r"\s+", " ", text.splitlines()[0] if text else "")


def _one(error: BaseException) -> Refusal | None:
    system = _system(error)
    if system in (SOURCE, REDSHIFT):
        code = _sqlstate(error)
        words = _words(error)
        if code == INSUFFICIENT_PRIVILEGE:
            return Refusal(system, code, words)
        if code and code.startswith(INVALID_AUTHORIZATION_CLASS):
            return Refusal(system, code, words, login=True)
        if code is None and "FATAL" in str(error) and _OBJECT.search(str(error)):
            # a database's CONNECT privilege, refused while connecting (no pgcode either)
            return Refusal(system, INSUFFICIENT_PRIVILEGE, _fatal(str(error)))
        if code is None and _LOGIN_WORDS.search(str(error)):
            return Refusal(system, "28000", _fatal(str(error)), login=True)
        if system == REDSHIFT and _COPY_ROLE_WORDS.search(words):
            return Refusal(system, code or "XX000", words, copy_role=True)
        return None
    if system == S3:
        response = getattr(error, "response", None)
        code = (response or {}).get("Error", {}).get("Code") if isinstance(response, dict) else None
        if code is None:
            found = _S3_WORDS.search(str(error))
            code = found.group(1) if found else None
        if code in S3_REFUSALS:
            return Refusal(S3, code, _words(error))
    return None


def _fatal(text: str) -> str:
    found = re.search(r"FATAL:\s*(.*)", text)
    return re.sub(r"\s+", " ", found.group(1) if found else text.strip().splitlines()[0]).strip()


def find_refusal(error: BaseException | None) -> Refusal | None:
    """The refusal behind an error (itself or what it was raised from), or None."""
    if error is None:
        return None
    for link in _chain(error):
        refusal = _one(link)
        if refusal is not None:
            return refusal
    return None


def grants_for(refusal: Refusal, role: str, database: str) -> list[str]:
    """The statements of the grant script that grant what was refused (empty: none names it)."""
    from tracking_sync.capture.slot import PUBLICATION
    from tracking_sync.core.sql import render_statements

    if refusal.system == SOURCE:
        statements = render_statements(SOURCE_GRANTS, role=role, database=database, publication=PUBLICATION)
    else:
        statements = render_statements(REDSHIFT_GRANTS, user=role, database=database)
    what = refusal.object
    if what is None:
        return []
    if what == "replication slots":
        return [s for s in statements if " replication" in s.lower() and s.lower().startswith("alter role")]
    kind, _, name = what.partition(" ")
    name, _, temporary = name.partition(" ")
    bare = name.rsplit(".", 1)[-1]
    if "must be owner" in refusal.words.lower():  # what the script has the owner do for it
        owned = re.compile(rf"create publication [^;]*\b{re.escape(bare)}\b", re.IGNORECASE)
        return [" ".join(found.group(0).split()) for s in statements if (found := owned.search(s))]
    if kind == "database":  # temporary tables: TEMP; otherwise what the script grants on it else
        on_database = re.compile(rf"\bon database {re.escape(bare)}\b", re.IGNORECASE)
        return [
            " ".join(s.split())
            for s in statements
            if on_database.search(s) and s.lower().startswith("grant temp") == bool(temporary)
        ]
    if kind == "table":
        pattern = re.compile(rf"\bgrant \w+ on [\w., ]*\b{re.escape(bare)}\b", re.IGNORECASE)
    else:
        pattern = re.compile(rf"\bon {kind} {re.escape(bare)}\b", re.IGNORECASE)
    return [" ".join(s.split()) for s in statements if pattern.search(s)]


def refusal_message(
    refusal: Refusal, role: str | None, database: str | None = None, schema: str | None = None
) -> str:
    """One line: who was refused what, the server's words, and the grant that fixes it.
    `schema`: the run's target schema, which Redshift's words leave out of a table's name
    ("permission denied for relation action"): the fix names the table in it, so it works
    as printed from an administrator's session, whose search_path does not hold it."""
    who = role or "(the connection's user)"
    at_once = "a retry cannot grant it, so the task failed at once"
    if refusal.system == S3:
        return (
            f"S3 refused {who} ({refusal.code}: {refusal.words}): give it the DAG's S3 policy, "
            f"{DAG_S3_POLICY} (its bucket and prefix: TRACKING_SYNC_BUCKET, TRACKING_SYNC_PREFIX "
            f"and TRACKING_SYNC_STAGING_URL); {at_once}"
        )
    engine = "the source (PostgreSQL)" if refusal.system == SOURCE else "Redshift"
    script = f"include/sql/{SOURCE_GRANTS if refusal.system == SOURCE else REDSHIFT_GRANTS}"
    conn_id = "postgres_source" if refusal.system == SOURCE else "redshift_default"
    if refusal.copy_role:
        return (
            f"Redshift's COPY could not read the files as the IAM role in aws_default's role_arn "
            f"({refusal.words}): attach {COPY_ROLE_POLICY} to that role (and the role to the "
            f"cluster); {at_once}"
        )
    if refusal.login:
        return (
            f"{engine} refused the login of {who} (SQLSTATE {refusal.code}: {refusal.words}): fix "
            f"the {conn_id} connection's user or password, or create the user and run {script} "
            f"for it as an administrator; {at_once}"
        )
    what = refusal.object or "an object"
    grants = grants_for(refusal, role or "<role>", database or "<database>") if refusal.object else []
    kind = what.split(" ", 1)[0]
    if grants:
        fix = "; ".join(grants)
    elif refusal.system == REDSHIFT and kind == "schema":
        # the user creates its schema and owns it: the owner's own CREATE or USAGE was revoked,
        # or another user made the schema
        name = what.split(" ", 1)[1]
        fix = (
            f"GRANT USAGE, CREATE ON SCHEMA {name} TO {who} (revoked from its owner), or ALTER "
            f"SCHEMA {name} OWNER TO {who} when another user made it (the pipeline's user owns it)"
        )
    elif refusal.system == REDSHIFT and kind == "table":
        # the user creates its tables and owns them: one made by another user
        table = what.split(" ", 1)[1]
        if schema and "." not in table:
            table = f"{schema}.{table}"
        fix = f"ALTER TABLE {table} OWNER TO {who} (the pipeline's user owns them)"
    else:
        fix = f"grant {who} what the statement needs on {what}, as its owner"
    return (
        f"{engine} refused {who} a privilege on {what} (SQLSTATE {refusal.code}: {refusal.words}): "
        f"as an administrator, run {fix} ({script}); {at_once}"
    )


def _identity(system: str) -> tuple[str | None, str | None]:
    """The role and database a system's connection uses (None when it cannot be read)."""
    from tracking_sync.core.names import AWS_CONN_ID, REDSHIFT_CONN_ID, SOURCE_CONN_ID

    try:
        from airflow.sdk import BaseHook

        if system == S3:
            extra = BaseHook.get_connection(AWS_CONN_ID).extra_dejson
            return extra.get("role_arn") or "the aws_default connection's credentials", None
        conn = BaseHook.get_connection(SOURCE_CONN_ID if system == SOURCE else REDSHIFT_CONN_ID)
        return conn.login, conn.schema
    except Exception:  # naming the role is a courtesy: the refusal is what counts
        return None, None


def refused(error: BaseException, schema: str | None = None) -> AccessRefused | None:
    """The AccessRefused to raise instead of `error`, or None when it is no refusal. `schema`:
    the run's target schema, when the caller knows it (refusal_message)."""
    if isinstance(error, NeedsFix):
        return None
    refusal = find_refusal(error)
    if refusal is None:
        return None
    role, database = _identity(refusal.system)
    return AccessRefused(refusal_message(refusal, role, database, schema=schema))


F = TypeVar("F", bound=Callable[..., Any])


def refusals_fail_at_once(func: F) -> F:
    """Under @task: a refusal raised by the task is raised as AccessRefused, naming the fix."""

    @functools.wraps(func)
    def task_body(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as error:
            translated = refused(error, schema=_target_schema(args, kwargs))
            if translated is None:
                raise
            raise translated from error

    return task_body  # type: ignore[return-value]


def _target_schema(args: tuple, kwargs: dict) -> str | None:
    """The target schema of the run plan a task was given (its `plan` argument), if any."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, Mapping) and isinstance(value.get("target_schema"), str):
            return value["target_schema"]
    return None
