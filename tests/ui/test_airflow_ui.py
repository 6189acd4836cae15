"""The Airflow UI as a new user meets it, in a real browser (Debian's chromium driven by
Playwright), against the processes `make airflow` starts: api-server, scheduler,
dag-processor and triggerer on a PostgreSQL metadata DB, with the local stack and demo data.

Each step is done as a user does it, by clicking; the metadata DB and the databases are read
only to wait for runs to end and to check what the clicks did. The steps run in order on one
`make airflow` and one logged-in tab (tests/ui/conftest.py):

1. the DAG list shows postgres_to_redshift, paused, and no import error;
2. its docs (the "Dag Docs" book icon) show the runbook;
3. the Trigger form shows mode, target_schema, validation and partitions with their descriptions and
   choices; a full refresh triggered there turns the grid green, and validate's log shows
   the PASSED table. The form's "Unpause on trigger" stays ticked, as a new user leaves it
   (and as the README says): it unpauses the DAG, which also starts the scheduled run of the
   latest interval (catchup off); with max_active_runs=1 the full refresh runs after it.
   That interval (yesterday) has no demo data (2025): the scheduled run moves nothing and
   passes. The test checks both;
4. Trigger -> Backfill over two days with Max Active Runs 1: both runs succeed, one after
   the other, in date order;
5. one target row moved by one second (an UPDATE through the Redshift stand-in): a run with
   validation=full turns validate red; its log names the user, the day and the repair
   command, and the DAG overview's "Recent Failed Task Logs" preview shows the one-line
   summary (TRACKING_SYNC FAILED ... what=... parity FAILED ...), not only a stack trace;
6. on-call's own move (issue 20): a part of the full refresh gone from S3 fails its rerun of
   load_action_staging at once; the part put back, Clear on the failed load with "Downstream"
   ticked reruns the load, the publish and validate, and the grid turns green.

Screenshots of every step go to .devstack/ui-screenshots/ (a failing step adds FAILED-*.png).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest

from tests.ui.airflow_ui import (
    DAG_ID,
    GREEN_HUES,
    RED_HUES,
    eventually,
    grid_colours,
    hue,
)

pytestmark = pytest.mark.integration

# What the Trigger form must show: every param, its description (a distinctive part of it)
# and, for the drop-downs, every choice.
PARAMS = {
    "mode": (
        "incremental: scheduled runs apply the changes captured",
        ["incremental", "full_refresh", "changes"],
    ),
    "target_schema": ("Redshift schema to load into", None),
    "validation": ("scoped: the users active in the interval", ["scoped", "full"]),
    # A number field, empty by default (the deployment's TRACKING_SYNC_PARTITIONS).
    "partitions": ("full_refresh only: the number of slices action is exported", "number"),
}
BACKFILL_DAYS = [datetime(2025, 3, 3, tzinfo=UTC), datetime(2025, 3, 4, tzinfo=UTC)]


@pytest.fixture(scope="module")
def journey():
    """What one step leaves for the next (run ids), as the user remembers it."""
    return {}


def _expect():
    from playwright.sync_api import expect

    return expect


def _trigger_dialog(page, title: str):
    return page.get_by_role("dialog").filter(has=page.get_by_role("heading", name=title))


def _go_to_the_dag(page) -> None:
    """To the DAG's overview: its Overview tab on the DAG's own pages, its name elsewhere (the
    card in the list, the breadcrumb of a run); then wait for the page, as the header's
    Trigger button is on every page and a click that lands before the route changes opens a
    dialog the new page drops."""
    overview = page.get_by_role("link", name="Overview", exact=True)
    if overview.is_visible():
        overview.click()
    else:
        page.get_by_role("link", name=DAG_ID, exact=True).first.click()
    page.wait_for_url(re.compile(rf"/dags/{DAG_ID}$"))
    _expect()(overview).to_be_visible()


def _open_trigger_form(page):
    """The Trigger dialog, on "Single Run" (it reopens on the kind of run triggered last)."""
    page.get_by_role("button", name="Trigger Dag").click()
    single_run = page.get_by_role("dialog").get_by_role("radio", name="Single Run")
    _expect()(single_run).to_be_attached()
    # The card's own text, not its hidden input: the input's box can lie outside the viewport
    # (Playwright then refuses even a forced check); the card is what a user clicks.
    page.get_by_role("dialog").get_by_text("Trigger a single run of this Dag").click()
    _expect()(single_run).to_be_checked()
    dialog = _trigger_dialog(page, f"Trigger Dag - {DAG_ID}")
    _expect()(dialog).to_be_visible()
    return dialog


def _choose(page, dialog, param: str, choice: str) -> None:
    dialog.get_by_role("combobox", name=param).click()
    page.get_by_role("option", name=choice, exact=True).click()
    _expect()(
        dialog.get_by_role("group").filter(has=page.get_by_role("combobox", name=param))
    ).to_contain_text(choice)


def _run_id_from_url(page) -> str:
    page.wait_for_url(re.compile(rf"/dags/{DAG_ID}/runs/manual__"))
    return unquote(page.url.split("/runs/", 1)[1].split("/", 1)[0])


def _assert_run_shown(page, run_id: str, states: dict[str, str]) -> None:
    """The run's page shows each task's state in the Task Instances table, and the grid's
    column for the run paints success green and failure red."""
    expect = _expect()

    def check():
        for task_id, state in states.items():
            row = page.get_by_role("row", name=re.compile(rf"^{task_id} "))
            expect(row).to_contain_text(state.capitalize())
        colours = grid_colours(page, run_id)
        assert sorted(colours) == sorted(states), f"grid tasks {sorted(colours)} != {sorted(states)}"
        for task_id, state in states.items():
            hues = GREEN_HUES if state == "success" else RED_HUES
            assert round(hue(colours[task_id])) in hues, f"{task_id} is {colours[task_id]}, not {state}"

    eventually(page, check)


def _log_text(page, run_id: str, task_id: str, must_show: str) -> str:
    """Open the task's log from the grid; its text once it shows `must_show`."""
    page.get_by_test_id(f"grid-{run_id}-{task_id}").click()
    log = page.get_by_role("code").filter(has_text=must_show).first
    _expect()(log).to_be_visible()
    return log.inner_text()


def test_the_dag_list_shows_the_dag_paused_and_no_import_error(page, make_airflow, shot):
    expect = _expect()
    # Home: the health panel has loaded; an import error would be listed above it.
    expect(page.get_by_text("Dag Processor")).to_be_visible()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_text(re.compile("Dag Import Error", re.I))).to_have_count(0)
    shot("01-home")

    page.get_by_role("link", name="Dags").first.click()
    card = page.get_by_role("link", name=DAG_ID, exact=True)
    expect(card).to_be_visible()
    expect(page.get_by_role("heading", name="1 Dag")).to_be_visible()
    expect(page.get_by_text(re.compile("Dag Import Error", re.I))).to_have_count(0)
    # The DAG arrives paused (is_paused_upon_creation): its toggle is off.
    expect(page.get_by_role("checkbox").first).not_to_be_checked()
    shot("02-dag-list")
    assert make_airflow.metadata("select filename, stacktrace from import_error") == []
    assert make_airflow.metadata("select is_paused from dag where dag_id = %s", (DAG_ID,)) == [(True,)]


def test_the_dag_docs_show_the_runbook(page, shot):
    expect = _expect()
    _go_to_the_dag(page)
    page.get_by_role("button", name="Dag Docs").click()
    docs = page.get_by_role("dialog").filter(has=page.get_by_role("heading", name="Dag Documentation"))
    expect(docs.get_by_role("heading", name=DAG_ID, level=1)).to_be_visible()
    for heading in ("Tasks, in order", "When validate fails", "First run of a new deployment"):
        expect(docs.get_by_role("heading", name=heading)).to_be_visible()
    # the repair the runbook gives, and where the report is
    expect(docs).to_contain_text(f"airflow backfill create --dag-id {DAG_ID}")
    expect(docs).to_contain_text("TRACKING_SYNC FAILED")
    shot("03-dag-docs")
    docs.get_by_role("button", name="Close").click()
    expect(docs).to_be_hidden()


def test_the_trigger_form_runs_a_full_refresh_that_turns_the_grid_green(page, make_airflow, shot, journey):
    expect = _expect()
    dialog = _open_trigger_form(page)
    for name, (description, choices) in PARAMS.items():
        field = dialog.get_by_role("group").filter(has_text=name).filter(has_text=description)
        expect(field).to_have_count(1)
        if choices is None:
            expect(field.get_by_role("textbox")).to_have_value("tracking")
            continue
        if choices == "number":
            expect(field.get_by_role("spinbutton", name=name)).to_have_value("")
            continue
        field.get_by_role("combobox", name=name).click()
        options = page.get_by_role("listbox").get_by_role("option")
        expect(options).to_have_text(choices)
        options.filter(has_text=re.compile(f"^{choices[0]}$")).click()  # the default stays
    # Ticked by default; see the module docstring for what it also starts.
    expect(dialog.get_by_role("checkbox", name=f"Unpause {DAG_ID} on trigger")).to_be_checked()
    _choose(page, dialog, "mode", "full_refresh")
    shot("04-trigger-form")
    dialog.get_by_role("button", name="Trigger").click()

    run_id = _run_id_from_url(page)
    journey["full_refresh"] = run_id
    ((_, state, *_),) = make_airflow.wait_for_runs("dag_run.run_id = %s", (run_id,), 1)
    tasks = [
        row[0]
        for row in make_airflow.metadata("select task_id from task_instance where run_id = %s", (run_id,))
    ]
    _assert_run_shown(page, run_id, dict.fromkeys(tasks, "success"))
    assert state == "success"
    shot("05-full-refresh-green")

    log = _log_text(page, run_id, "validate", "Validation PASSED")
    assert f"Validation PASSED: {DAG_ID} run {run_id}" in log, log
    for check in ("action_rows_per_day", "per_user_session_totals", "table_row_counts"):
        assert re.search(rf"^{check} +\|.*\| +ok$", log, re.M), f"{check} not ok in:\n{log}"
    shot("06-validate-log-passed")

    (conf,) = make_airflow.metadata("select conf from dag_run where run_id = %s", (run_id,))[0]
    assert conf["mode"] == "full_refresh", conf
    # Unpausing on trigger also ran the latest interval, first; it moved nothing and passed.
    scheduled = make_airflow.metadata(
        "select state, end_date from dag_run where dag_id = %s and run_type = 'scheduled'", (DAG_ID,)
    )
    assert [s for s, _ in scheduled] == ["success"], scheduled
    env = make_airflow.env
    (source_rows,) = make_airflow.query(env["SOURCE_DSN"], "select count(*) from action")[0]
    (target_rows,) = make_airflow.query(env["REDSHIFT_DSN"], "select count(*) from tracking.action")[0]
    assert source_rows == target_rows > 0


def test_a_backfill_over_two_days_runs_both_days_in_order(page, make_airflow, shot, journey):
    expect = _expect()
    _go_to_the_dag(page)
    # The card's text, as in _open_trigger_form.
    _open_trigger_form(page).get_by_text("Run this Dag for a range of dates").click()
    dialog = _trigger_dialog(page, f"Run Backfill - {DAG_ID}")
    pickers = dialog.get_by_test_id("datetime-input")
    for index, (label, day) in enumerate(zip(("From", "To"), BACKFILL_DAYS)):
        pickers.nth(index).click()
        picker = page.get_by_role("dialog").filter(has=page.get_by_role("textbox", name=label))
        picker.get_by_role("textbox", name=label).fill(f"{day:%Y/%m/%d}")
        picker.get_by_role("textbox", name="HH:mm").fill("00:00")
        page.keyboard.press("Enter")
        expect(pickers.nth(index)).to_contain_text(f"{day:%b %d, %Y} 00:00")
    expect(dialog).to_contain_text("2 runs will be triggered.")
    # Max Active Runs (the form's params, partitions among them, are number fields too)
    dialog.locator('input[name="max_active_runs"]').fill("1")
    shot("07-backfill-form")
    dialog.get_by_role("button", name="Run Backfill").click()
    expect(page.get_by_text("Backfill in progress")).to_be_visible()
    shot("08-backfill-in-progress")

    runs = make_airflow.wait_for_runs("dag_run.run_type = 'backfill'", (), 2)
    page.get_by_role("link", name="Runs", exact=True).click()
    run_ids = [f"backfill__{day + timedelta(days=1):%Y-%m-%dT%H:%M:%S+00:00}" for day in BACKFILL_DAYS]
    rows = [page.get_by_role("row").filter(has_text=run_id) for run_id in run_ids]

    def both_succeeded():
        for row in rows:
            expect(row).to_contain_text("Success")
            expect(row).to_contain_text("Backfill")

    eventually(page, both_succeeded)
    shot("09-backfill-runs")
    # Run After, then Start Date: the later day started after the earlier one.
    started = [re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row.inner_text())[1] for row in rows]
    assert started[0] <= started[1], started

    assert [run_id for run_id, *_ in runs] == run_ids, runs
    assert [state for _, state, *_ in runs] == ["success", "success"], runs
    (first_end, second_start) = (runs[0][3], runs[1][2])
    assert second_start >= first_end, f"Max Active Runs 1: one run after the other: {runs}"
    assert make_airflow.metadata("select max_active_runs from backfill") == [(1,)]
    states = make_airflow.metadata(
        "select distinct state from task_instance where run_id = any(%s)", (run_ids,)
    )
    assert states == [("success",)], states


def test_a_damaged_target_row_fails_validate_with_the_user_the_day_and_the_repair(page, make_airflow, shot):
    expect = _expect()
    # One second later: the last action of a user's first session, on the Redshift stand-in
    # (which, as Redshift, has no UPDATE ... RETURNING: the row is selected first).
    ((row_id, user, day),) = make_airflow.query(
        make_airflow.env["REDSHIFT_DSN"],
        """
        select id, user_profile_id, cast(action_time as date) from tracking.action
        where id = (
            select id from tracking.action
            where session_id = (
                select session_id from tracking.action
                where user_profile_id = (select min(user_profile_id) from tracking.action)
                order by action_time limit 1)
            order by action_time desc, id limit 1)
          and cast(action_time as time) < '23:59:58'
        """,
    )
    make_airflow.query(
        make_airflow.env["REDSHIFT_DSN"],
        "update tracking.action set action_time = action_time + interval '1 second' where id = %s",
        (row_id,),
    )
    day = day.isoformat()

    _go_to_the_dag(page)
    dialog = _open_trigger_form(page)
    _choose(page, dialog, "validation", "full")
    shot("10-trigger-validation-full")
    dialog.get_by_role("button", name="Trigger").click()
    run_id = _run_id_from_url(page)
    ((_, state, *_),) = make_airflow.wait_for_runs(
        "dag_run.run_id = %s", (run_id,), 1, expect_failed_task="validate"
    )
    assert state == "failed"
    tasks = [
        row[0]
        for row in make_airflow.metadata("select task_id from task_instance where run_id = %s", (run_id,))
    ]
    _assert_run_shown(page, run_id, {task: "failed" if task == "validate" else "success" for task in tasks})
    shot("11-validate-red")

    log = _log_text(page, run_id, "validate", "Validation FAILED")
    assert re.search(rf"^{user} +\| +total_time_spent +\|", log, re.M), f"user {user} not in:\n{log}"
    assert re.search(rf"^{row_id} +\| +changed +\| +action_time +\|", log, re.M), log
    assert f"days that differ: {day}" in log, log
    repair = (
        f"airflow backfill create --dag-id {DAG_ID} --from-date {day} --to-date {day} "
        "--reprocess-behavior completed --max-active-runs 1"
    )
    assert repair in log, f"no repair command {repair!r} in:\n{log}"
    shot("12-validate-log-failed", showing=page.get_by_text("days that differ:"))

    # The DAG's overview: the failed-task preview leads with the one-line summary.
    _go_to_the_dag(page)
    title = page.get_by_text("Recent Failed Task Logs", exact=True)
    expect(title).to_be_visible()
    page.get_by_role("button", name="Show Logs").click()
    preview = (
        page.locator("div").filter(has=title).filter(has=page.get_by_role("button", name="Hide Logs")).last
    )
    summary = f"TRACKING_SYNC FAILED dag={DAG_ID} task=validate"
    expect(preview).to_contain_text(summary)
    text = preview.inner_text()
    (line,) = [line for line in text.splitlines() if summary in line]
    assert f"run={run_id} " in line, line
    assert "what=AirflowFailException: parity FAILED (full): " in line, line
    assert f"days: {day}" in line and "per_user_session_totals: 1 user_profile_id differ" in line, line
    shot("13-failed-task-preview", showing=preview)


def _rest(make_airflow, method: str, path: str, body: dict | None = None) -> dict:
    """One REST API call as the logged-in user (to set a failure up; the repair is clicked)."""
    import json
    import urllib.request

    from devstack.airflow import access_token

    token = access_token(make_airflow.url, make_airflow.user, make_airflow.password)
    request = urllib.request.Request(
        make_airflow.url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def _s3(make_airflow):
    import json

    import boto3

    connection = json.loads(make_airflow.env["AIRFLOW_CONN_AWS_DEFAULT"])
    return boto3.client(
        "s3",
        endpoint_url=connection["extra"]["endpoint_url"],
        region_name=connection["extra"]["region_name"],
        aws_access_key_id=connection["login"],
        aws_secret_access_key=connection["password"],
    )


def _wait_for_run_state(make_airflow, run_id: str, states: tuple[str, ...]) -> str:
    import time

    from tests.ui.airflow_ui import RUN_TIMEOUT

    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        ((state,),) = make_airflow.metadata("select state from dag_run where run_id = %s", (run_id,))
        if state in states:
            return state
        retrying = make_airflow.metadata(
            "select task_id from task_instance where run_id = %s and state = 'up_for_retry'", (run_id,)
        )
        assert not retrying, (
            f"{retrying} of {run_id} up for retry:\n{make_airflow.task_log(run_id, retrying[0][0])}"
        )
        assert time.monotonic() < deadline, f"run {run_id} is still {state} after {RUN_TIMEOUT}s"
        time.sleep(1)


def _wait_for_cleared(make_airflow, run_id: str, task_id: str, failed_try: int) -> None:
    """Until the clear of the failed `task_id` (its try `failed_try`) is in the metadata
    database: the task no longer failed, or failed again in a later try."""
    import time

    deadline = time.monotonic() + 60
    while True:
        ((state, try_number),) = make_airflow.metadata(
            "select state, try_number from task_instance where run_id = %s and task_id = %s",
            (run_id, task_id),
        )
        if state != "failed" or try_number > failed_try:
            return
        assert time.monotonic() < deadline, (
            f"{task_id} of {run_id} still failed (try {try_number}) 60 s after Clear"
        )
        time.sleep(0.2)


def test_a_failed_load_cleared_with_its_downstream_after_the_repair_turns_the_run_green(
    page, make_airflow, shot, journey
):
    """Issue 20, on-call's own move. A part of the full refresh's load gone from S3: its load,
    rerun, fails at once, naming the export to clear. The part put back (the cause repaired),
    on-call clicks Clear on the failed load_action_staging (its row in the run's Task
    Instances), with "Downstream" ticked:
    the load runs again (its staging table, dropped by the publish, is created again first),
    then the publish and validate, and the grid turns green."""
    import json

    expect = _expect()
    run_id = journey["full_refresh"]
    ((uris,),) = make_airflow.metadata(
        "select value from xcom where run_id = %s and task_id = 'write_action_manifest' and key = 'part_uris'",
        (run_id,),
    )
    uris = uris if isinstance(uris, list) else json.loads(uris)
    bucket, key = uris[0][len("s3://") :].split("/", 1)
    s3, aside = _s3(make_airflow), f"ui-test-aside/{key}"
    s3.copy_object(Bucket=bucket, Key=aside, CopySource={"Bucket": bucket, "Key": key})
    s3.delete_object(Bucket=bucket, Key=key)
    _rest(
        make_airflow,
        "POST",
        f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
        {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": ["load_action_staging"],
            "include_downstream": True,
            "only_failed": False,
        },
    )
    assert _wait_for_run_state(make_airflow, run_id, ("failed", "success")) == "failed"
    log = make_airflow.task_log(run_id, "load_action_staging")
    assert (
        "StagedFilesExpired" in log and f"clear export_action of run {run_id} with its downstream" in log
    ), log
    tasks = [
        row[0]
        for row in make_airflow.metadata("select task_id from task_instance where run_id = %s", (run_id,))
    ]

    page.goto(f"{make_airflow.url}/dags/{DAG_ID}/runs/{run_id}")

    def load_is_red():
        # The table first (an auto-waiting look): the grid is drawn by then.
        expect(page.get_by_role("row", name=re.compile(r"^load_action_staging "))).to_contain_text("Failed")
        colours = grid_colours(page, run_id)
        assert "load_action_staging" in colours, colours
        assert round(hue(colours["load_action_staging"])) in RED_HUES, colours

    eventually(page, load_is_red)
    shot("14-load-failed")

    # The cause repaired: the part is back where the manifest lists it.
    s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": aside})
    s3.delete_object(Bucket=bucket, Key=aside)

    # The run's Task Instances table: the failed load's row, its Clear button.
    failed_row = page.get_by_role("row", name=re.compile(r"^load_action_staging Failed"))
    failed_row.get_by_role("button", name="Clear Task Instance").click()
    dialog = page.get_by_role("dialog").filter(
        has=page.get_by_role("heading", name=re.compile("Clear Task Instance"))
    )
    expect(dialog).to_be_visible()
    affected = dialog.get_by_text(re.compile(r"Affected Tasks: [1-9]"))
    expect(affected).to_be_visible()
    if "Affected Tasks: 1" in affected.inner_text():  # "Downstream" not ticked: tick it
        dialog.get_by_role("button", name="Downstream", exact=True).click()
    # the load, replace_action_rows, advance_capture_slot and validate
    expect(dialog.get_by_text("Affected Tasks: 4")).to_be_visible()
    shot("15-clear-with-downstream")
    ((failed_try,),) = make_airflow.metadata(
        "select try_number from task_instance where run_id = %s and task_id = 'load_action_staging'",
        (run_id,),
    )
    dialog.get_by_role("button", name="Confirm").click()
    expect(dialog).to_be_hidden()
    # The dialog may close before the clear is committed: the run is still "failed" until then.
    _wait_for_cleared(make_airflow, run_id, "load_action_staging", failed_try)

    assert _wait_for_run_state(make_airflow, run_id, ("success", "failed")) == "success", (
        make_airflow.task_log(run_id, "load_action_staging")
    )
    page.goto(f"{make_airflow.url}/dags/{DAG_ID}/runs/{run_id}")
    _assert_run_shown(page, run_id, dict.fromkeys(tasks, "success"))
    shot("16-cleared-run-green")
    env = make_airflow.env
    (source_rows,) = make_airflow.query(env["SOURCE_DSN"], "select count(*) from action")[0]
    (target_rows,) = make_airflow.query(env["REDSHIFT_DSN"], "select count(*) from tracking.action")[0]
    assert source_rows == target_rows > 0
