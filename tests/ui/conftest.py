"""Browser-test fixtures: `make airflow` running, Debian's chromium, one logged-in page.

One `make airflow` and one browser page serve every step of a module: the steps follow each
other as a user's session does (the full refresh the backfill builds on, the damage the last
step finds), and Airflow takes about a minute to come up.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from devstack.airflow import processes_in_sessions, sessions_under
from devstack.net import free_port
from tests.ui.airflow_ui import (
    DOWN_TIMEOUT,
    INSTALL_HINT,
    SCREENSHOTS,
    UI_TIMEOUT_MS,
    VIEWPORT,
    chromium_args,
    chromium_executable,
    start_make_airflow,
    wait_until_up,
)

DEMO_ROWS = 3_000  # over 2025: ~8 actions a day, a few hundred users


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the outcome of each phase on the item: a failing step leaves a screenshot."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def chromium():
    path = chromium_executable()
    if path is None:
        message = f"chromium is not installed: {INSTALL_HINT}"
        if os.geteuid() == 0 or os.environ.get("CI"):
            pytest.fail(f"{message} (as root, and in CI, the browser tests must run)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def make_airflow(chromium, tmp_path_factory):
    """`python -m devstack airflow` (what `make airflow` runs) on a state dir of its own, with
    demo data; stopped afterwards as `make stack-down` stops it (SIGTERM: a SIGINT would be
    ignored when pytest itself runs in the background), and nothing left running."""
    state_dir = tmp_path_factory.mktemp("make-airflow") / "devstack"
    process, output = start_make_airflow(state_dir, port=free_port(), demo_rows=DEMO_ROWS)
    try:
        yield wait_until_up(process, output, state_dir)
    finally:
        sessions = sessions_under(process.pid)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=DOWN_TIMEOUT)
        except Exception:
            process.kill()
            process.wait()
        time.sleep(0.5)
        left = processes_in_sessions(sessions)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"make airflow left processes behind: {left}"


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=chromium_args())
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def screenshots():
    """The folder of this run's screenshots, emptied first."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS


@pytest.fixture(scope="module")
def page(browser, make_airflow, screenshots):
    """One browser tab for the module's steps, logged in through the login form with the
    user and password `make airflow` printed."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    tab = context.new_page()
    tab.goto(make_airflow.url)
    tab.get_by_label("Username").fill(make_airflow.user)
    tab.get_by_label("Password").fill(make_airflow.password)
    tab.screenshot(path=screenshots / "00-login.png")
    tab.get_by_role("button", name="Sign in").click()
    expect(tab.get_by_role("heading", name="Health")).to_be_visible()
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def shot(page, screenshots, request):
    """shot("name") saves a screenshot of the page as a step's artifact; a failing step
    saves one too, named after the test."""
    taken = []

    def take(name: str, showing=None) -> None:
        """`showing`: a locator to scroll into view first (the UI scrolls inside its panels,
        which a full-page screenshot does not unroll)."""
        taken.append(name)
        if showing is not None:
            showing.scroll_into_view_if_needed()
        page.screenshot(path=screenshots / f"{name}.png", full_page=True)

    yield take
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        page.screenshot(path=screenshots / f"FAILED-{request.node.name}.png", full_page=True)
