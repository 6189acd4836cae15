"""Preflight on the real source PostgreSQL 15, set up well and badly; the settings only an
RDS or Aurora server has are checked on what check_source reads from pg_settings."""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from tracking_sync.capture.errors import CaptureNotReady
from tracking_sync.capture.preflight import check_source
from tracking_sync.capture.preflight_checks import Finding, check_role, check_wal_keep_size, check_wal_level
from tracking_sync.capture.slot import PUBLICATION


def settings(problems):
    return [finding.setting for finding in problems]


def assert_one_line_with_fixes(finding: Finding) -> None:
    line = str(finding)
    assert "\n" not in line
    assert f"{finding.setting} = {finding.value}: " in line
    assert "Fix: PostgreSQL: " in line and "; RDS: " in line and "; Aurora: " in line


@pytest.mark.integration
def test_a_source_set_up_for_capture_passes_with_the_unlimited_wal_warning(captured):
    preflight = check_source(captured.reader, slot=captured.slot)
    assert preflight.ok and preflight.problems == ()
    assert settings(preflight.warnings) == ["max_slot_wal_keep_size"]
    assert "-1 (unlimited)" in str(preflight.warnings[0])
    assert_one_line_with_fixes(preflight.warnings[0])
    preflight.raise_for_problems()  # nothing to raise
    # Pure reading: nothing was left open or changed.
    assert captured.reader.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE


@pytest.mark.integration
def test_before_the_bootstrap_no_publication_is_the_only_problem(capture_source):
    preflight = check_source(capture_source.reader)
    assert settings(preflight.problems) == [f"publication {PUBLICATION}"]
    assert "missing" in str(preflight.problems[0]) and "CREATE PUBLICATION" in str(preflight.problems[0])
    assert_one_line_with_fixes(preflight.problems[0])
    with pytest.raises(CaptureNotReady, match=f"publication {PUBLICATION} = missing"):
        preflight.raise_for_problems()


@pytest.mark.integration
def test_replica_identity_nothing_is_a_problem(captured):
    captured.execute("alter table action replica identity nothing")
    [problem] = check_source(captured.reader, slot=captured.slot).problems
    assert (problem.setting, problem.value) == ("public.action replica identity", "NOTHING")
    assert "REPLICA IDENTITY DEFAULT" in problem.fix
    assert_one_line_with_fixes(problem)


@pytest.mark.integration
def test_no_primary_key_is_a_problem_twice(captured):
    captured.execute("alter table action drop constraint action_pkey")
    problems = check_source(captured.reader, slot=captured.slot).problems
    assert settings(problems) == ["public.action replica identity", "public.action primary key"]
    assert all("ADD PRIMARY KEY (id)" in problem.fix for problem in problems)


@pytest.mark.integration
def test_full_identity_passes(captured):
    captured.execute("alter table action replica identity full")
    assert check_source(captured.reader, slot=captured.slot).ok


@pytest.mark.integration
def test_a_publication_without_action_or_its_truncates_or_columns_is_a_problem(captured):
    captured.execute(f"alter publication {PUBLICATION} set (publish = 'insert, update, delete')")
    [problem] = check_source(captured.reader, slot=captured.slot).problems
    assert (problem.value, "truncate" in problem.problem) == ("insert, update, delete", True)

    captured.execute(
        f"alter publication {PUBLICATION} set (publish = 'insert, update, delete, truncate')",
        f"alter publication {PUBLICATION} set table action (id, query) where (id > 10)",
    )
    problems = check_source(captured.reader, slot=captured.slot).problems
    assert settings(problems) == [
        f"publication {PUBLICATION} column list",
        f"publication {PUBLICATION} row filter",
    ]
    assert "leaves out action_time" in str(problems[0]) and "(id > 10)" in str(problems[1])

    captured.execute(f"alter publication {PUBLICATION} drop table action")
    [problem] = check_source(captured.reader, slot=captured.slot).problems
    assert problem.value == "without action" and "ADD TABLE public.action" in problem.fix


@pytest.mark.integration
def test_a_missing_slot_is_a_problem_once_bootstrapped(capture_source):
    capture_source.execute(f"create publication {PUBLICATION} for table action")
    [problem] = check_source(capture_source.reader, slot=capture_source.slot).problems
    assert problem.value == "missing" and "mode=full_refresh" in str(problem)


@pytest.fixture
def role_without_replication(captured, stack):
    """A login role with no REPLICATION attribute (md5 password), dropped afterwards."""
    name = f"capture_{uuid.uuid4().hex[:8]}"
    stack.postgres.execute(f"create role {name} login password 'pw-{name}'")
    connection = psycopg2.connect(
        host=stack.postgres.host,
        port=stack.postgres.port,
        dbname=captured.database,
        user=name,
        password=f"pw-{name}",
    )
    try:
        yield name, connection
    finally:
        connection.close()
        stack.postgres.execute(f"drop role {name}")


@pytest.mark.integration
def test_a_role_without_replication_is_a_problem(role_without_replication, captured):
    name, connection = role_without_replication
    [problem] = check_source(connection, slot=captured.slot).problems
    assert (problem.setting, problem.value) == (f"role {name}", "no REPLICATION")
    assert f"ALTER ROLE {name} WITH REPLICATION" in problem.fix
    assert f"GRANT rds_replication TO {name}" in problem.fix
    assert_one_line_with_fixes(problem)
    # What PostgreSQL itself says to that role.
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="superuser or replication role"):
        with connection.cursor() as cursor:
            cursor.execute(
                "select * from pg_logical_slot_peek_binary_changes(%s, null, null, "
                "'proto_version', '1', 'publication_names', %s)",
                (captured.slot, PUBLICATION),
            )
    connection.rollback()


# The checks of what a server of another kind reports (RDS, Aurora, an unlimited keep size),
# on the settings as check_source reads them: (setting, unit) by name.


def test_wal_level_replica_on_postgresql():
    problems = []
    check_wal_level({"wal_level": ("replica", None)}, problems)
    [problem] = problems
    assert (problem.setting, problem.value) == ("wal_level", "replica")
    assert "wal_level = logical" in problem.fix and "rds.logical_replication = 1" in problem.fix
    assert "DB cluster parameter group" in problem.fix  # Aurora's
    assert_one_line_with_fixes(problem)


def test_rds_logical_replication_off_names_the_rds_setting():
    problems = []
    check_wal_level({"wal_level": ("replica", None), "rds.logical_replication": ("off", None)}, problems)
    assert [(p.setting, p.value) for p in problems] == [("rds.logical_replication", "off")]


def test_membership_in_rds_replication_is_enough():
    problems = []
    check_role(("capture", False, False, True), problems)
    assert problems == []
    check_role(("capture", False, False, False), problems)
    assert problems[0].value == "no REPLICATION, not a member of rds_replication"


def test_a_limited_wal_keep_size_gives_no_warning():
    warnings = []
    check_wal_keep_size({"max_slot_wal_keep_size": ("102400", "MB")}, warnings)
    assert warnings == []
