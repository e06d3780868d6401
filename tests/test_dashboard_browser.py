"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright, against
``core start`` (gateway, scheduler, admin) as a real process. ``nox -s browser`` installs
Chromium (``.ci/chromium.py``); screenshots are left in ``artifacts/dashboard/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.admin_kit import core_start, ingest
from tests.dashboard_kit import SECRET, http_log_in, make_project

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "dashboard"
WRITE_TOKEN = "wr1te-s3cret"
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """``core start`` on a fresh project with three events; the gateway's and dashboard's URLs."""
    project = make_project(tmp_path_factory.mktemp("dashboard"))
    with core_start(project) as (gateway, admin):
        ingest(gateway, 3)
        yield gateway, admin.removesuffix("/api"), project


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (the Debian package, not a Playwright download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page, 1200 px wide."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(WAIT_MS)
    yield context.new_page()
    context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page: Any, base: str, token: str = WRITE_TOKEN, then: str = "/") -> None:
    page.goto(f"{base}{then}")
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(f"{base}{then}") + "$"))


def test_a_page_without_a_session_redirects_to_the_login(page: Any, deployment: tuple[str, str, Path]) -> None:
    _, base, _ = deployment
    page.goto(f"{base}/jobs?status_in=discarded")
    assert "/admin/login?next=" in page.url
    shot(page, "login")
    page.get_by_label("Admin token").fill("not-a-token")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "that token is not one of admin.tokens"
    page.get_by_label("Admin token").fill(WRITE_TOKEN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/jobs?status_in=discarded")


def test_retry_a_failing_actions_discarded_jobs_and_watch_them_succeed(
    page: Any, deployment: tuple[str, str, Path]
) -> None:
    _, base, project = deployment
    log_in(page, base)
    failing = page.locator("tr.failing").first
    failing.get_by_text("discarded 3").wait_for()  # the overview refreshes itself until they are
    assert failing.get_by_role("link").first.inner_text() == "warehouse.insert"
    shot(page, "overview")
    failing.get_by_role("link", name="warehouse.insert").click()
    page.wait_for_url(f"{base}/destinations/warehouse/actions/insert")
    page.get_by_text("the warehouse refused the row: disk full").wait_for()
    shot(page, "action")
    (project / "fixed").write_text("")
    page.get_by_role("button", name="Retry 3 discarded jobs").click()
    assert page.get_by_role("status").inner_text() == "retried 3 of 3 discarded jobs of warehouse.insert"
    page.goto(f"{base}/jobs?actions_in=warehouse.insert&status_in=succeeded")
    for _ in range(WAIT_MS // 500):
        if page.locator("td[data-label=Status]").count() == 3:
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.locator("td[data-label=Status]").all_inner_texts() == ["succeeded"] * 3


def test_a_jobs_timeline(page: Any, deployment: tuple[str, str, Path]) -> None:
    _, base, _ = deployment
    log_in(page, base, then="/jobs?actions_in=warehouse.insert")
    page.locator("td[data-label=Job] a").first.click()
    timeline = page.locator("#timeline")
    timeline.wait_for()
    steps = timeline.locator("li strong").all_inner_texts()
    assert steps[:3] == ["new → acknowledged", "acknowledged → executing", "executing → discarded"] or steps[:2] == [
        "new → acknowledged", "acknowledged → executing"]
    assert "disk full" in timeline.inner_text()
    shot(page, "job")


def test_pause_and_resume_an_action(page: Any, deployment: tuple[str, str, Path]) -> None:
    _, base, _ = deployment
    log_in(page, base, then="/destinations/crm/actions/notify")
    page.get_by_role("button", name="Pause").click()
    assert page.get_by_role("status").inner_text() == "paused crm.notify"
    assert page.locator(".paused").first.inner_text() == "paused"
    page.goto(f"{base}/")
    assert "paused" in page.locator("tr", has_text="crm.notify").inner_text()
    page.goto(f"{base}/destinations/crm/actions/notify")
    page.get_by_role("button", name="Resume").click()
    assert page.get_by_role("status").inner_text() == "resumed crm.notify"
    assert page.get_by_role("button", name="Pause").is_visible()


def test_pause_and_resume_a_whole_destination(page: Any, deployment: tuple[str, str, Path]) -> None:
    _, base, _ = deployment
    log_in(page, base)
    page.get_by_role("link", name="crm", exact=True).click()
    page.wait_for_url(f"{base}/destinations/crm")
    page.get_by_label("Why (kept in the history)").fill("crm is down for maintenance")
    page.get_by_role("button", name="Pause all of crm").click()
    assert page.get_by_role("status").inner_text() == "paused crm"
    assert re.search(r"Paused by\s+ops, \d+s ago: crm is down for maintenance", page.locator("dl.facts").inner_text())
    shot(page, "destination")
    page.goto(f"{base}/destinations/crm/actions/notify")
    assert "paused with its whole destination" in page.locator("dl.facts").inner_text()
    page.goto(f"{base}/destinations/crm")
    page.get_by_role("button", name="Resume all of crm").click()
    assert page.get_by_role("status").inner_text() == "resumed crm"
    assert page.get_by_role("button", name="Pause all of crm").is_visible()


def test_a_script_in_a_payload_shows_as_text(page: Any, deployment: tuple[str, str, Path]) -> None:
    gateway, base, _ = deployment
    script = "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
    response = httpx.post(f"{gateway}/track", json={"data": {"note": script}}, timeout=10)
    event_id = response.json()["event_id"]
    log_in(page, base, then=f"/events/{event_id}")
    assert script in page.locator("#payload").inner_text()
    assert page.evaluate("window.pwned === undefined")
    assert page.locator("main script, main img").count() == 0


def test_a_read_only_token_sees_no_write_button(page: Any, deployment: tuple[str, str, Path]) -> None:
    _, base, _ = deployment
    log_in(page, base, token="r3ad-s3cret", then="/destinations/warehouse/actions/insert")
    assert page.get_by_role("button", name=re.compile("Retry|Pause|Resume|Replay")).count() == 0


def test_no_page_shows_a_configured_secret(page: Any, deployment: tuple[str, str, Path]) -> None:
    _, base, _ = deployment
    log_in(page, base)
    for path in ("/", "/options", "/sources", "/nodes", "/migrations", "/jobs", "/events",
                 "/destinations/warehouse/actions/insert", "/search"):
        page.goto(f"{base}{path}")
        html = page.content()
        assert SECRET not in html and WRITE_TOKEN not in html and "r3ad-s3cret" not in html, path
    page.goto(f"{base}/options")
    assert "options.warehouse.api_token" in page.content()


def test_the_overview_at_phone_width(browser: Any, deployment: tuple[str, str, Path]) -> None:
    _, base, _ = deployment
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    log_in(page, base)
    width = page.evaluate("document.documentElement.scrollWidth")
    shot(page, "overview-phone")
    context.close()
    assert width <= 390


def test_a_form_without_the_csrf_token_or_from_a_read_only_token_is_refused(
    deployment: tuple[str, str, Path],
) -> None:
    _, base, _ = deployment
    pause = f"{base}/destinations/crm/actions/notify/pause"
    with httpx.Client(timeout=10) as anonymous:
        assert anonymous.post(pause, data={}).status_code == 403
    for token in ("r3ad-s3cret", WRITE_TOKEN):
        with httpx.Client(timeout=10) as client:
            http_log_in(client, base, token)
            refused = client.post(pause, data={"csrf": "forged"})
            assert refused.status_code == 403 and "CSRF" in refused.text
    with httpx.Client(timeout=10) as reader:
        http_log_in(reader, base, "r3ad-s3cret")
        cookie = reader.cookies.get("core_admin_session", path="/admin/")
        assert "r3ad-s3cret" not in cookie
    page = httpx.get(f"{base}/destinations/crm/actions/notify", cookies={"core_admin_session": cookie}, timeout=10)
    assert "Pause" not in page.text and "paused" not in page.text
