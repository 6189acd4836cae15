"""On-call for a nightly run that is late: an Airflow Deadline Alert.

A scheduled run not finished `TRACKING_SYNC_DEADLINE_MINUTES` (default 360: 6 hours) after
its data interval ended calls the configured notifier (TRACKING_SYNC_NOTIFIER, the one
task failures use, tracking_sync.oncall.notifications) with one line:

    TRACKING_SYNC LATE dag=postgres_to_redshift run=scheduled__2025-03-01T00:00:00+00:00
    interval=2025-03-01T00:00:00+00:00 -> 2025-03-02T00:00:00+00:00 state=running:
    not finished 6h 12m after its interval ended (allowed 6h 0m, deadline 2025-03-02T06:00:00+00:00)

`{{ deadline_summary }}` (and `{{ failure_summary }}`, so one Slack template serves both)
hold that line in the notifier's templates.

The reference: DAGRUN_LOGICAL_DATE, whose value for a run of CronDataIntervalTimetable is
its interval START, so the alert's interval is the schedule's period (1 day) plus the
allowed lateness: deadline = interval end + lateness. A custom reference (data_interval_end)
would have to be registered as an AirflowPlugin on every component to be deserialized;
the built-in one needs nothing. Airflow creates the deadline for every run of the DAG; a
backfill of old days or a manual run with an old logical date is "late" as soon as it
exists, so the callback notifies only scheduled (nightly) runs and logs the others.

The callback: an AsyncCallback, run by the triggerer (a SyncCallback would run on the
executor as a workload of its own). Notifiers are synchronous (HTTP, SMTP), so it calls
the notifier in a thread and never blocks the triggerer's event loop.

The setting is read when the DAG file is parsed (environment, or [tracking_sync]
deadline_minutes in airflow.cfg; no Variable, no I/O); a changed value applies to runs
created after the next parse. `off` parses the DAG without a deadline.

`airflow dags test postgres_to_redshift` parses the DAG without its deadline too (see
nightly_deadline): Airflow 3.3's dag.test() cannot finish a successful run of a DAG that
has one. `dags test` also writes the DAG it parsed to the metadata database; the DAG
processor writes it back with the deadline at its next parse (measured here: ~35 s after
`dags test` ended), so a run the scheduler creates in between has no alert. A DAG object
run by dag.test() in-process (DagBag, `python dags/...`) needs `dag.deadline = None`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference, get_parsing_context

from tracking_sync.core.errors import MissingSetting
from tracking_sync.core.names import DAG_ID
from tracking_sync.core.settings import setting
from tracking_sync.oncall.notifications import configured_notifier

log = logging.getLogger(__name__)

DEADLINE_ENV = "TRACKING_SYNC_DEADLINE_MINUTES"
DEFAULT_DEADLINE_MINUTES = 360
NIGHTLY_PERIOD = timedelta(days=1)  # the schedule's interval: "0 0 * * *"


OFF = "off"


def allowed_lateness(value: str | None = None) -> timedelta | None:
    """How long after its interval's end a nightly run may still be running; None when the
    setting is `off`."""
    raw = setting(DEADLINE_ENV) if value is None else value
    if not raw:
        return timedelta(minutes=DEFAULT_DEADLINE_MINUTES)
    if raw.strip().lower() == OFF:
        return None
    try:
        minutes = float(raw)
    except ValueError:
        minutes = -1.0
    if not minutes > 0:
        raise MissingSetting(
            f"{DEADLINE_ENV}={raw!r} is not a positive number of minutes (default "
            f"{DEFAULT_DEADLINE_MINUTES}): how long after its interval ends a nightly run may run"
        )
    return timedelta(minutes=minutes)


def parsed_to_run(dag_id: str = DAG_ID) -> bool:
    """Whether Airflow parses the DAG file to run `dag_id` itself rather than to schedule it:
    `airflow dags test <dag_id>`, or a worker about to run one of its tasks. Airflow's
    documented parsing context (get_parsing_context) names the DAG then; the DAG processor,
    whose serialized DAG is what creates runs and their deadlines, leaves it empty."""
    return get_parsing_context().dag_id == dag_id


def nightly_deadline(period: timedelta = NIGHTLY_PERIOD, dag_id: str = DAG_ID) -> DeadlineAlert | None:
    """The DAG's deadline: a run not done `allowed_lateness()` after its interval ended
    (None when the setting is `off`, or when the file is parsed to run the DAG)."""
    lateness = allowed_lateness()
    if lateness is None:
        return None
    # Airflow 3.3.2's dag.test() cannot finish a successful run of a DAG with a deadline.
    # It runs a copy made by serializing the DAG (airflow/sdk/definitions/dag.py:1280), whose
    # `deadline` is the alerts' serialized dicts (airflow/serialization/serialized_objects.py:
    # 1742 and 1889); only writing it to the database replaces them by ids of deadline_alert
    # rows (airflow/models/serialized_dag.py:404-426). Once every task succeeded,
    # DagRun.update_state looks each entry up as an id (airflow/models/dagrun.py:1267-1271;
    # get_by_id, airflow/models/deadline_alert.py:116-118, converts a str only) and
    # SQLAlchemy's UUID type fails on the dict ("'dict' object has no attribute 'hex'"):
    # `dags test` exits 1. 3.3.2 is the newest 3.3. `airflow dags test <dag_id>` parses under
    # a parsing context naming the DAG (airflow/utils/cli.py:293, apache/airflow#37606), so
    # the DAG it runs has none; a worker's parse (the same context, with the task:
    # airflow/sdk/execution_time/task_runner.py:1203) has no use for one. The DAG
    # processor's parse keeps it: deployments keep the alert.
    if parsed_to_run(dag_id):
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,  # the interval's start
        interval=period + lateness,
        callback=AsyncCallback(on_deadline_missed),
        name="nightly run late",
    )


def _moment(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def late_summary(dag_run: dict[str, Any], deadline_time: datetime, now: datetime) -> str:
    """The one line on-call reads: which run, its interval, its state, how late."""
    start = _moment(dag_run.get("data_interval_start"))
    end = _moment(dag_run.get("data_interval_end")) or deadline_time
    interval = f"{start.isoformat() if start else '?'} -> {end.isoformat()}"
    return (
        f"TRACKING_SYNC LATE dag={dag_run.get('dag_id')} run={dag_run.get('dag_run_id')} "
        f"interval={interval} state={dag_run.get('state')}: not finished {_duration(now - end)} "
        f"after its interval ended (allowed {_duration(deadline_time - end)}, deadline "
        f"{deadline_time.isoformat()})"
    )


def notify_late_run(context: dict[str, Any], now: datetime | None = None) -> str | None:
    """Log the LATE line and call the configured notifier; the line, or None for a run
    that is not a nightly one (backfill, manual)."""
    dag_run = context.get("dag_run") or {}
    deadline_time = _moment((context.get("deadline") or {}).get("deadline_time"))
    if dag_run.get("run_type") != "scheduled":
        log.info(
            "deadline of %s run %s passed; not a nightly run: on-call not notified",
            dag_run.get("run_type"),
            dag_run.get("dag_run_id"),
        )
        return None
    line = late_summary(dag_run, deadline_time or datetime.now(UTC), now or datetime.now(UTC))
    log.error(line)
    notifier = configured_notifier()
    if notifier is not None:
        notifier({**context, "deadline_summary": line, "failure_summary": line})
    return line


async def on_deadline_missed(context: dict[str, Any], **kwargs: Any) -> str | None:
    """The Deadline Alert's callback (in the triggerer): see notify_late_run."""
    return await asyncio.to_thread(notify_late_run, context)
