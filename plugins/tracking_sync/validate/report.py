"""The verdict of a validation: `ValidationReport`, JSON for XCom and tables for the task log.

One report, read three ways:

    print(report.summary())        # one line: the verdict and what differs
    print(report.format_table())   # the whole report, as on-call reads it
    report.to_dict()               # JSON-serialisable, whatever the outcome

With logical capture, differences that changes committed after the run's batch explain
(still in the slot: the next run applies and checks them) are pending, not failures:
`report.pending` (a `PendingNote`, tracking_sync.validate.pending) says which, and a
report whose every difference is pending passes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from tracking_sync.validate.compare import CheckResult, format_key
from tracking_sync.validate.drilldown import DrillDown
from tracking_sync.validate.pending_note import PendingNote
from tracking_sync.validate.text import format_days, format_value, text_table

REPORT_ROWS = 20  # differing rows printed; the XCom holds every one found
PENDING = "pending"  # the verdict of a check whose every difference is a pending change


@dataclass
class ValidationReport:
    dag_id: str
    run_id: str | None
    window_start: str
    window_end: str
    scope: str
    source: str
    target: str
    checks: list[CheckResult]
    days_to_backfill: list[str] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    repair: list[str] = field(default_factory=list)
    rows: DrillDown | None = None  # the differing `action` rows, when a check failed
    seconds: float = 0.0
    users_in_scope: int | None = None  # scope "users": how many users were listed
    pending: PendingNote | None = None  # logical capture: what pending changes explain
    # each engine's seconds computing the shared pass (the checks' own are on each check)
    pass_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def scope_label(self) -> str:
        """The scope as people read it: `users` says how many."""
        if self.users_in_scope is None:
            return self.scope
        return f"{self.scope}: {self.users_in_scope} listed users, whole history"

    @property
    def passed(self) -> bool:
        """Every check agrees, or every difference is a change still pending in the slot."""
        if self.pending is not None and self.pending.explained:
            return True
        return all(check.passed for check in self.checks)

    @property
    def agrees(self) -> bool:
        """Every check agrees, with nothing pending to excuse."""
        return all(check.passed for check in self.checks)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        for check, result in zip(data["checks"], self.checks, strict=True):
            check["passed"] = result.passed
        return _jsonable(data)

    def summary(self) -> str:
        """One line: the verdict and, on failure, what differs."""
        window = f"{self.scope_label}, {self.window_start} -> {self.window_end}"
        if self.agrees:
            return f"parity OK: {len(self.checks)} checks agree ({window})"
        if self.passed:
            agree = len(self.checks) - len(self.failed_checks)
            return (
                f"parity OK with pending changes ({window}): {agree} of {len(self.checks)} "
                f"checks agree; {self.pending.line()}"
            )
        parts = []
        for check in self.failed_checks:
            what = []
            if check.differing:
                what.append(f"{check.differing} {check.keys[0]} differ")
            if check.missing_in_target:
                what.append(f"{check.missing_in_target} missing in target")
            if check.missing_in_source:
                what.append(f"{check.missing_in_source} missing in source")
            parts.append(f"{check.name}: {', '.join(what)}")
        days = f"; days: {format_days(self.days_to_backfill)}" if self.days_to_backfill else ""
        rows = ""
        if self.rows is not None and self.rows.rows:
            ids = self.rows.row_ids
            rows = f"; rows: {len(ids)} ids differ, e.g. {', '.join(str(i) for i in ids[:5])}"
        hint = f"; {self.diagnosis[0]}" if self.diagnosis else ""
        pending = ""
        if self.pending is not None and self.pending.unexplained and self.pending.explains_some:
            pending = (
                f"; pending changes explain {self.pending.explained_part()}, not: "
                f"{self.pending.unexplained[0]}{' and more' if len(self.pending.unexplained) > 1 else ''}"
            )
        return f"parity FAILED ({self.scope_label}): {'; '.join(parts)}{days}{rows}{hint}{pending}"

    def format_table(self) -> str:
        """The report as on-call reads it in the task log."""
        lines = [
            f"Validation {self._verdict()}: {self.dag_id} run {self.run_id}",
            f"  window  {self.window_start} -> {self.window_end}   scope {self.scope_label}",
            f"  source  {self.source}",
            f"  target  {self.target}",
            "",
        ]
        lines += text_table(
            [
                "check",
                "source rows",
                "target rows",
                "differ",
                "missing in target",
                "missing in source",
                "verdict",
            ],
            [
                [
                    c.name,
                    c.source_rows,
                    c.target_rows,
                    c.differing,
                    c.missing_in_target,
                    c.missing_in_source,
                    self._check_verdict(c),
                ]
                for c in self.checks
            ],
        )
        notes = [f"{check.name}: {check.note}" for check in self.checks if check.note]
        if notes:
            lines += ["", *notes]
        for check in self.failed_checks:
            if check.top_differences:
                lines += ["", f"{check.name}: largest differences"]
                lines += text_table(
                    [", ".join(check.keys), "column", "source", "target", "delta"],
                    [
                        [
                            format_key(d.key),
                            d.column,
                            format_value(d.source),
                            format_value(d.target),
                            format_value(d.delta),
                        ]
                        for d in check.top_differences
                    ],
                )
            if check.missing_in_target:
                lines.append(
                    f"{check.name}: {check.missing_in_target} {', '.join(check.keys)} missing in "
                    f"target, e.g. {', '.join(format_key(k) for k in check.missing_in_target_sample)}"
                )
            if check.missing_in_source:
                lines.append(
                    f"{check.name}: {check.missing_in_source} {', '.join(check.keys)} missing in "
                    f"source (extra in target), e.g. "
                    f"{', '.join(format_key(k) for k in check.missing_in_source_sample)}"
                )
        if self.rows is not None:
            lines += ["", *format_rows(self.rows)]
        if self.days_to_backfill:
            lines += ["", f"days that differ: {format_days(self.days_to_backfill)}"]
        if self.pending is not None:
            lines += ["", "pending changes:", f"  {self.pending.line()}"]
        if self.diagnosis:
            lines += ["", "diagnosis:"] + [f"  - {hint}" for hint in self.diagnosis]
        if self.repair:
            lines += ["", "repair:"] + [f"  {step}" for step in self.repair]
        passes = ", ".join(f"{side} {seconds:.2f} s" for side, seconds in self.pass_seconds.items())
        lines.append(f"({self.seconds:.2f} s" + (f"; shared pass: {passes})" if passes else ")"))
        return "\n".join(lines)

    def _verdict(self) -> str:
        if self.agrees:
            return "PASSED"
        return "PASSED (differences pending for the next run)" if self.passed else "FAILED"

    def _check_verdict(self, check: CheckResult) -> str:
        if check.passed:
            return "ok"
        # Only when every difference is pending: in a failed report a check's day or user
        # touched by a pending change may also hide the difference that fails it.
        return PENDING if self.passed else "FAILED"


def format_rows(found: DrillDown, first: int = REPORT_ROWS) -> list[str]:
    """The row drill-down as on-call reads it: the first `first` differing rows."""
    capped = f"; capped by {found.capped}" if found.capped else ""
    head = (
        f"rows that differ: {len(found.rows)} (action rows of {found.region}; "
        f"{found.queries} queries on each engine, {found.seconds:.2f} s{capped})"
    )
    if not found.rows:
        return [head, "  no row differs in that region (a difference outside it, or only a type)"]
    lines = [head]
    lines += text_table(
        ["id", "difference", "column", "source", "target"],
        [
            [
                row.id,
                row.kind,
                row.column or "(row)",
                _cell(row.source),
                _cell(row.target),
            ]
            for row in found.rows[:first]
        ],
    )
    if len(found.rows) > first:
        lines.append(f"... and {len(found.rows) - first} more: XCom 'validation_report', rows")
    return lines


def _cell(value: Any) -> str:
    if isinstance(value, dict):  # a whole row: its time and session say which one it is
        return f"row at {value.get('action_time')} session {value.get('session_id')}"
    text = format_value(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value
