"""The dashboard's forms over HTTP, against ``core start admin`` as a real process: the login
form's CSRF token bound to a pre-session cookie, and pausing and resuming a whole destination."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.admin_kit import HEADERS, READ, WRITE, running
from tests.dashboard_kit import form_token, http_log_in, make_project

pytestmark = pytest.mark.slow
SESSION, LOGIN = "core_admin_session", "core_admin_login"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard's URL of ``core start admin`` with a read and a write token."""
    project = make_project(tmp_path_factory.mktemp("dashboard-http"))
    with running(project, CORE_ADMIN_TOKEN=f"{READ},{WRITE}") as api:
        yield api.removesuffix("/api")


def paused(base: str, destination: str) -> bool:
    response = httpx.get(f"{base}/api/destinations/{destination}", headers=HEADERS["read"], timeout=10)
    return bool(response.json()["paused"])


def test_a_login_needs_the_csrf_token_of_its_own_login_form(base: str) -> None:
    with httpx.Client(timeout=10) as browser, httpx.Client(timeout=10) as other_site:
        form = browser.get(f"{base}/login")
        assert form.status_code == 200 and browser.cookies.get(LOGIN, path="/admin/")
        token = form_token(form.text)
        # no pre-session cookie (a form posted from another site), with or without a token
        for data in ({"token": "wr1te-s3cret"}, {"token": "wr1te-s3cret", "csrf": token}):
            refused = other_site.post(f"{base}/login", data=data)
            assert refused.status_code == 403 and "CSRF" in refused.text
            assert SESSION not in refused.cookies
        forged = browser.post(f"{base}/login", data={"token": "wr1te-s3cret", "csrf": "forged"})
        assert forged.status_code == 403 and SESSION not in forged.cookies
        wrong = browser.post(f"{base}/login", data={"token": "not-a-token", "csrf": token})
        assert wrong.status_code == 401 and form_token(wrong.text) == token
        done = browser.post(f"{base}/login", data={"token": "wr1te-s3cret", "csrf": token, "next": "/admin/nodes"})
        assert (done.status_code, done.headers["location"]) == (303, "/admin/nodes")
        assert done.cookies.get(SESSION) and not browser.cookies.get(LOGIN, path="/admin/")
        page = browser.get(f"{base}/nodes")
        assert page.status_code == 200 and "ops" in page.text
        assert token not in page.text, "the session's CSRF token must be new, not the login form's"


def test_pause_and_resume_a_whole_destination(base: str) -> None:
    with httpx.Client(timeout=10) as browser:
        http_log_in(browser, base, "wr1te-s3cret")
        page = browser.get(f"{base}/destinations/crm")
        assert page.status_code == 200 and "Pause all of crm" in page.text
        assert re.search(r'href="/admin/destinations/crm/actions/notify"', page.text)
        csrf = form_token(page.text)
        refused = browser.post(f"{base}/destinations/crm/pause", data={"csrf": "forged"})
        assert refused.status_code == 403 and not paused(base, "crm")
        done = browser.post(f"{base}/destinations/crm/pause", data={"csrf": csrf, "reason": "crm is down"})
        assert (done.status_code, done.headers["location"]) == (303, "/admin/destinations/crm")
        assert paused(base, "crm") and not paused(base, "warehouse")
        page = browser.get(f"{base}/destinations/crm")
        assert "paused crm" in page.text and "Resume all of crm" in page.text
        action = browser.get(f"{base}/destinations/crm/actions/notify").text
        assert "with its whole destination" in action and ">Pause</button>" in action
        overview = browser.get(f"{base}/").text
        assert re.search(r'paused</span> with\s+<a href="/admin/destinations/crm">crm</a>', overview)
        done = browser.post(f"{base}/destinations/crm/resume", data={"csrf": csrf})
        assert done.status_code == 303 and not paused(base, "crm")
        assert "resumed crm" in browser.get(f"{base}/destinations/crm").text


def test_a_read_only_token_cannot_pause_a_destination(base: str) -> None:
    with httpx.Client(timeout=10) as reader:
        http_log_in(reader, base, "r3ad-s3cret")
        page = reader.get(f"{base}/destinations/crm")
        assert page.status_code == 200 and "Pause all" not in page.text
        csrf = form_token(page.text)  # the log-out form's: the session's own token
        refused = reader.post(f"{base}/destinations/crm/pause", data={"csrf": csrf})
        assert refused.status_code == 403 and "read-only" in refused.text
        assert not paused(base, "crm")


def test_log_out_needs_the_sessions_csrf_token(base: str) -> None:
    with httpx.Client(timeout=10) as browser:
        http_log_in(browser, base, "r3ad-s3cret")
        csrf = form_token(browser.get(f"{base}/").text)
        assert browser.post(f"{base}/logout", data={}).status_code == 403
        assert browser.get(f"{base}/nodes").status_code == 200
        done = browser.post(f"{base}/logout", data={"csrf": csrf})
        assert (done.status_code, done.headers["location"]) == (303, "/admin/login")
        assert browser.get(f"{base}/nodes").status_code == 303


def test_search_goes_to_an_id_or_to_the_list_a_filter_takes(base: str) -> None:
    with httpx.Client(timeout=10) as browser:
        http_log_in(browser, base, "r3ad-s3cret")
        jobs = browser.get(f"{base}/search", params={"q": "status_in=failed&actions_in=crm.notify"})
        assert (jobs.status_code, jobs.headers["location"]) == (
            303, "/admin/jobs?status_in=failed&actions_in=crm.notify")
        events = browser.get(f"{base}/search", params={"q": "received_after=2h"})
        assert events.headers["location"] == "/admin/events?received_after=2h"
        wrong = browser.get(f"{base}/search", params={"q": "colour=red"})
        assert wrong.status_code == 200 and "no list filters on colour; the filters are" in wrong.text
        missing = browser.get(f"{base}/search", params={"q": "3NAWtf72LpKInA6waAsvfsYXPbR"})
        assert "No job or event has the id 3NAWtf72LpKInA6waAsvfsYXPbR." in missing.text
