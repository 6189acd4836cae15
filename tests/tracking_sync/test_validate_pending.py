"""Differences explained by changes still pending in the capture's slot (pure: no database).

The report is built from the real parity checks compared over rows made up here; the
pending changes, the target's sync state and its rows are fakes. What the slot holds is
read for real in tests/tracking_sync/capture/test_capture_pending.py, the whole path in
tests/e2e/test_capture_pending.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

import tracking_sync.validate.pending as pending_module
import tracking_sync.validate.run as run_module
from tracking_sync.capture.pending import PendingChanges
from tracking_sync.core.plan import RunPlan, RunSlice
from tracking_sync.load.sync_state import SyncState
from tracking_sync.validate.compare import CheckResult, compare_sorted
from tracking_sync.validate.diagnosis import TIMESTAMP_HINT
from tracking_sync.validate.drilldown import DrillDown
from tracking_sync.validate.parity import load_checks
from tracking_sync.validate.pending import differences_of, explain_by_pending
from tracking_sync.validate.placed_rows import CHANGED_ROWS_CHECK, compare_rows_by_id
from tracking_sync.validate.report import PENDING, ValidationReport
from tracking_sync.validate.row_differences import CHANGED, EXTRA_IN_TARGET, RowDifference

SLOT = "tracking_sync_tracking"
APPLIED = 0x1E26CC8
DAY = date(2025, 3, 2)
CHECKS = {check.name: check for check in load_checks()}


def per_user(source: list[tuple], target: list[tuple]) -> CheckResult:
    return compare_sorted(CHECKS["per_user_session_totals"], source, target)


def per_day(source: list[tuple], target: list[tuple]) -> CheckResult:
    return compare_sorted(CHECKS["action_rows_per_day"], source, target)


def row_counts(action: tuple[int, int], action_type: tuple[int, int] = (10, 10)) -> CheckResult:
    return compare_sorted(
        CHECKS["table_row_counts"],
        [("action_of_listed_users", action[0]), ("action_type", action_type[0])],
        [("action_of_listed_users", action[1]), ("action_type", action_type[1])],
    )


def by_id(*ids: int) -> CheckResult:
    return CheckResult(
        name=CHANGED_ROWS_CHECK, keys=["id"], differing=len(ids), differing_keys=[[i] for i in ids]
    )


def rows(*ids: int) -> DrillDown:
    return DrillDown(region="test", rows=[RowDifference(i, CHANGED, "query", "a", "b") for i in ids])


def report_of(*checks: CheckResult, drilled: DrillDown | None = None) -> ValidationReport:
    report = ValidationReport(
        dag_id="postgres_to_redshift",
        run_id="r",
        window_start="2025-03-07T00:00:00+00:00",
        window_end="2025-03-08T00:00:00+00:00",
        scope="users",
        source="source",
        target="target",
        checks=list(checks),
        users_in_scope=2,
    )
    report.days_to_backfill = sorted({day for check in checks for day in check.days})
    report.diagnosis = ["the listed users differ"]
    report.repair = ["Reload the days"]
    report.rows = drilled
    return report


# A user whose totals differ (5), a day whose rows differ, one row more in the target.
def a_failed_report(drilled: DrillDown | None = None) -> ValidationReport:
    return report_of(
        per_user([(5, 10.0, 5.0), (7, 1.0, 1.0)], [(5, 12.0, 6.0), (7, 1.0, 1.0)]),
        per_day([(DAY, 10, 100.0, 5, 50)], [(DAY, 11, 120.0, 5, 50)]),
        row_counts((40, 41)),
        by_id(42),
        drilled=drilled if drilled is not None else rows(42, 43),
    )


def pending_changes(**fields) -> PendingChanges:
    values = {
        "slot": SLOT,
        "after_lsn": APPLIED,
        "upto_lsn": APPLIED + 1000,
        "ids": {42, 43},
        "old_ids": {42, 43},
        "users": {5},
        "days": {DAY.isoformat()},
        "updates": 1,
        "deletes": 1,
    }
    return PendingChanges(**(values | fields))


@pytest.fixture
def target_state(monkeypatch):
    """The target's sync state of the slot, and its rows' places (user, day) by id."""
    state = {"state": SyncState("logical", SLOT, APPLIED, "bootstrap"), "places": ({}, {}), "asked": []}
    monkeypatch.setattr(pending_module, "read_sync_state", lambda conn, schema: state["state"])

    def places(conn, schema, ids):
        state["asked"].append(list(ids))
        users, days = state["places"]
        return {users[i] for i in ids if i in users}, {days[i] for i in ids if i in days}

    monkeypatch.setattr(pending_module, "target_places", places)
    return state


def explain(report: ValidationReport, pending: PendingChanges | Exception):
    def read(connection, slot, *, after_lsn, max_ids):
        assert (slot, after_lsn) == (SLOT, APPLIED), "read from the target's applied LSN"
        if isinstance(pending, Exception):
            raise pending
        return pending

    return explain_by_pending(
        report,
        slot=SLOT,
        after="this run's batch",
        capture_conn=object(),
        target_conn=object(),
        target_schema="tracking",
        read=read,
    )


# ---------------------------------------------------------------- what differs


def test_each_check_names_its_users_days_ids_or_counts():
    report = a_failed_report()
    found = {check.name: differences_of(check) for check in report.failed_checks}
    assert found["per_user_session_totals"].users == {5}
    assert found["action_rows_per_day"].days == {DAY.isoformat()}
    assert found["table_row_counts"].counts == [("action_of_listed_users", 1)]
    assert found[CHANGED_ROWS_CHECK].ids == {42}
    assert all(not differences.unlisted for differences in found.values())


def test_a_check_that_kept_fewer_keys_than_differ_cannot_be_matched():
    check = CheckResult(name="per_user_session_totals", keys=["user_profile_id"], differing=1500)
    check.differing_keys = [[user] for user in range(1000)]
    assert differences_of(check).unlisted == [
        "per_user_session_totals: 1500 user_profile_id differ and 1000 are kept"
    ]


def test_action_types_count_is_never_a_pending_change():
    (line,) = differences_of(row_counts((40, 40), action_type=(10, 11))).unlisted
    assert line.startswith("table_row_counts: action_type differs by 1")


# ---------------------------------------------------------------- the verdict


def test_every_difference_pending_passes_with_the_note(target_state):
    report = a_failed_report()
    assert not report.passed

    note = explain(report, pending_changes())

    assert report.passed and note.explained and report.pending is note
    assert (note.rows, note.users, note.days) == (2, 1, 1)
    assert note.sample_ids == [42, 43] and note.unexplained == []
    assert set(note.pending_checks) == {check.name for check in report.failed_checks}
    assert target_state["asked"] == [], "the images in the slot named every user and day"
    assert (report.repair, report.days_to_backfill, report.diagnosis) == ([], [], [])
    assert report.summary().startswith("parity OK with pending changes (")
    assert "2 rows / 1 users / 1 days (ids 42, 43; users 5; days 2025-03-02) differ only by changes " in (
        report.summary()
    )
    assert report.summary().endswith("the next run applies and checks them")
    table = report.format_table()
    assert table.startswith("Validation PASSED (differences pending for the next run)")
    assert f"| {PENDING}" in table and "FAILED" not in table
    data = report.to_dict()
    assert data["passed"] and data["pending"]["explained"] and data["pending"]["after_lsn"] == "0/1E26CC8"
    assert data["pending"]["changes"]["ids"] == 2


def test_a_row_no_pending_change_explains_fails_and_says_which(target_state):
    report = a_failed_report(drilled=rows(42, 43, 99))

    note = explain(report, pending_changes())

    assert not report.passed and not note.explained
    assert note.unexplained == ["rows that differ: id 99 with no pending change"]
    assert (note.rows, note.users, note.days) == (2, 1, 1), "what the pending changes do explain"
    assert report.repair == ["Reload the days"], "the repair stands"
    assert report.diagnosis[-1].startswith("changes committed after this run's batch (slot ")
    assert report.diagnosis[-1].endswith(
        "NOT explained by them: rows that differ: id 99 with no pending change"
    )
    assert "; pending changes explain 2 rows / 1 users / 1 days" in report.summary()
    verdicts = [
        line.rsplit("|", 1)[1].strip() for line in report.format_table().split("\n\n")[1].splitlines()[2:]
    ]
    assert verdicts == ["FAILED", "FAILED", "FAILED", "FAILED"], "a failed report shows no check as pending"


def test_a_deleted_rows_user_and_day_are_read_from_the_target(target_state):
    # The delete of 43 carries only its id: user 9 and 2025-03-01 are its row's in the target.
    target_state["places"] = ({43: 9}, {43: "2025-03-01"})
    report = report_of(
        per_user([(9, 10.0, 5.0)], [(9, 12.0, 6.0)]),
        per_day([(date(2025, 3, 1), 10, 100.0, 5, 50)], [(date(2025, 3, 1), 11, 120.0, 5, 50)]),
        drilled=DrillDown(region="test", rows=[RowDifference(43, EXTRA_IN_TARGET)]),
    )

    note = explain(report, pending_changes())

    assert note.explained and report.passed
    assert target_state["asked"] == [[42, 43]], "the updated and deleted ids, once"
    assert (note.sample_users, note.sample_days) == ([9], ["2025-03-01"])


def test_target_rows_that_cannot_be_read_explain_nothing(target_state, monkeypatch):
    def unreachable(conn, schema, ids):
        raise ConnectionError("redshift went away")

    monkeypatch.setattr(pending_module, "target_places", unreachable)
    report = report_of(per_user([(9, 10.0, 5.0)], [(9, 12.0, 6.0)]))
    note = explain(report, pending_changes())
    assert not report.passed and not note.explained
    assert note.unexplained == ["the pending changes could not be read: ConnectionError: redshift went away"]


def test_a_count_difference_beyond_the_pending_ids_fails(target_state):
    report = report_of(row_counts((40, 45)))
    note = explain(report, pending_changes())
    assert not report.passed
    assert note.unexplained == [
        "table_row_counts: action_of_listed_users differs by 5 rows, more than the 2 pending ids"
    ]


@pytest.mark.parametrize(
    ("pending", "says"),
    [
        (
            pending_changes(truncated_at=APPLIED + 10),
            "a TRUNCATE of action committed at 0/1E26CD2 is pending",
        ),
        (
            pending_changes(capped="more than 2 distinct ids are pending"),
            "more than 2 distinct ids are pending",
        ),
        (
            RuntimeError("replication slot is active for PID 7"),
            "could not be read: RuntimeError: replication",
        ),
    ],
)
def test_pending_changes_not_read_whole_explain_nothing(target_state, pending, says):
    report = a_failed_report()
    note = explain(report, pending)
    assert not report.passed and not note.explained
    assert says in note.unexplained[0]
    assert says in report.diagnosis[-1]


def test_a_target_without_an_applied_lsn_of_the_slot_explains_nothing(target_state):
    target_state["state"] = SyncState("logical", "tracking_sync_other", APPLIED, "bootstrap")
    report = a_failed_report()
    note = explain(report, AssertionError("the slot is not read"))
    assert not report.passed
    assert note.unexplained == [
        f"the target tracking has no applied LSN of slot {SLOT}, so which changes are pending cannot be said"
    ]


def test_nothing_pending_leaves_the_diagnosis_as_it_was(target_state):
    report = a_failed_report()
    note = explain(
        report, pending_changes(ids=set(), old_ids=set(), users=set(), days=set(), updates=0, deletes=0)
    )
    assert not report.passed and report.diagnosis == ["the listed users differ"]
    assert note.line().startswith("changes committed after this run's batch (slot ")
    assert (
        "explain no difference: per_user_session_totals: user_profile_id 5 with no pending change"
        in note.line()
    )


def test_the_timestamp_cause_is_never_excused(target_state):
    report = a_failed_report()
    report.diagnosis = [f"{TIMESTAMP_HINT} (the target's action_time is 'timestamp without time zone')"]
    assert explain(report, AssertionError("the slot is not read")) is None
    assert not report.passed and report.pending is None


def test_a_passed_report_reads_nothing(target_state):
    report = report_of(per_user([(5, 1.0, 1.0)], [(5, 1.0, 1.0)]))
    assert explain(report, AssertionError("the slot is not read")) is None
    assert report.summary().startswith("parity OK: 1 checks agree")


# ---------------------------------------------------------------- validate_for_run


def plan(capture: str, slot: str | None) -> RunPlan:
    end = datetime(2025, 3, 8, tzinfo=UTC)
    return RunPlan(
        mode="changes",
        target_schema="tracking",
        validation="scoped",
        run_slice=RunSlice(full_refresh=False, start=datetime(2025, 3, 7, tzinfo=UTC), end=end),
        window_start=datetime(2025, 3, 7, tzinfo=UTC),
        window_end=end,
        capture=capture,
        action_load="changes" if slot else "interval",
        slot=slot,
        upto_lsn=APPLIED if slot else None,
    )


@pytest.mark.parametrize(
    ("capture", "slot", "capture_conn", "reads"),
    [
        ("logical", SLOT, "conn", True),
        ("interval", None, "conn", False),  # interval capture: no slot, as before
        ("logical", SLOT, None, False),  # no connection to read the slot with
    ],
)
def test_validate_for_run_reads_the_slot_only_with_logical_capture(
    monkeypatch, capture, slot, capture_conn, reads
):
    asked = []
    monkeypatch.setattr(run_module, "compare_rows_by_id", lambda *args, **kwargs: by_id())
    monkeypatch.setattr(run_module, "run_validation", lambda *args, **kwargs: a_failed_report())
    monkeypatch.setattr(run_module, "explain_by_pending", lambda report, **kwargs: asked.append(kwargs))

    report = run_module.validate_for_run(
        plan(capture, slot), object(), object(), run_id="r", capture_conn=capture_conn
    )

    assert not report.passed
    assert bool(asked) == reads
    if reads:
        assert (asked[0]["slot"], asked[0]["after"], asked[0]["capture_conn"]) == (
            SLOT,
            "this run's batch",
            "conn",
        )


# ---------------------------------------------------------------- the ids compared by id


class FakeConnection:
    """Answers select_actions_by_id with the rows given, by id."""

    def __init__(self, rows: dict[int, tuple]) -> None:
        self.rows = rows

    def cursor(self):
        return self

    def execute(self, sql, params=None):
        self.result = [] if sql.startswith("set ") else [self.rows[i] for i in sorted(self.rows)]

    def fetchall(self):
        return self.result

    def close(self):
        pass

    def rollback(self):
        pass


def test_rows_compared_by_id_keep_their_differing_ids():
    moment = datetime(2025, 3, 2, 8, tzinfo=UTC)

    def row(row_id, query):
        return (row_id, 5, "s", 2, moment, None, None, None, False, query, False)

    source = FakeConnection({1: row(1, "a"), 2: row(2, "b"), 3: row(3, "c")})
    target = FakeConnection({1: row(1, "a"), 2: row(2, "changed"), 4: row(4, "gone")})
    result = compare_rows_by_id(source, target, "tracking", [1, 2, 3, 4], name=CHANGED_ROWS_CHECK)
    assert result.differing_keys == [[2], [3], [4]]
    assert differences_of(result).ids == {2, 3, 4}
