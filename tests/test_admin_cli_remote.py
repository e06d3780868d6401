"""Issue 14, the operator commands over a running admin API (``--url``, ``--token`` or
``CORE_ADMIN_URL``/``CORE_ADMIN_TOKEN``): run outside the project (no store opened), they print
what they print over the store; a refused token, an unknown name or an unreachable URL is one
line on stderr and exit 2, never a traceback, never the token. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hookspecs import Job
from tests.admin_kit import HEADERS, READ, WRITE, run_core, running
from tests.test_admin_api import TOKENS, seeded, store_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow
SECRETS = ("r3ad-s3cret", "wr1te-s3cret")


@pytest.fixture()
def admin(seeded: dict[str, list[Job]], store_url: str, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    """The URL of a running ``core start admin`` on the seeded project, with a read and a write token."""
    plugins = "postgres" if store_url.startswith("postgresql:") else ""
    with running(tmp_path / "project", CORE_ADMIN_TOKEN=TOKENS, plugins=plugins) as url:
        yield url


def _elsewhere(tmp_path: Path) -> Path:
    """A directory without a project: a command that opened the store would fail there."""
    directory = tmp_path / "elsewhere"
    directory.mkdir(exist_ok=True)
    return directory


def _refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2 with one ``error:`` line (and its hint) naming ``words``, no traceback, no secret."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    assert all(word in done.stderr for word in words), done.stderr
    assert not any(secret in done.stderr + done.stdout for secret in SECRETS)


def test_pause_resume_and_flows_over_the_admin_api(admin: str, store_url: str, tmp_path: Path) -> None:  # noqa: F811
    here = _elsewhere(tmp_path)
    done = run_core(here, "actions", "pause", "warehouse.insert", "--reason", "down", "--url", admin, "--token", WRITE)
    assert done.returncode == 0 and done.stdout == "paused warehouse.insert\n", done.stderr
    action = httpx.get(f"{admin}/destinations/warehouse/actions/insert", headers=HEADERS["read"]).json()
    assert action["paused"], action
    done = run_core(here, "actions", "resume", "warehouse.insert", CORE_ADMIN_URL=admin, CORE_ADMIN_TOKEN=WRITE)
    assert done.returncode == 0 and done.stdout == "resumed warehouse.insert\n", done.stderr

    done = run_core(here, "flows", "disable", "web-to-warehouse", "--reason", "noisy", "--url", admin, "--token", WRITE)
    assert done.returncode == 0 and done.stdout == "disabled web-to-warehouse\n", done.stderr
    done = run_core(here, "flows", "list", "--url", admin, "--token", READ)
    assert done.returncode == 0, done.stderr
    assert "web-to-warehouse" in done.stdout and "ops" in done.stdout and "noisy" in done.stdout
    plugins = "postgres" if store_url.startswith("postgresql:") else ""
    local = run_core(tmp_path / "project", "flows", "list", CORE_LOAD_PLUGINS=plugins)  # the same, over the store
    assert local.returncode == 0 and local.stdout == done.stdout, local.stderr
    done = run_core(here, "flows", "enable", "web-to-warehouse", CORE_ADMIN_URL=admin, CORE_ADMIN_TOKEN=WRITE)
    assert done.returncode == 0 and done.stdout == "enabled web-to-warehouse\n", done.stderr


def test_refusals_over_the_admin_api_are_one_line(admin: str, tmp_path: Path) -> None:
    here = _elsewhere(tmp_path)
    _refused(run_core(here, "flows", "list", "--url", admin), "401")
    _refused(run_core(here, "flows", "list", "--url", admin, "--token", "wrong"), "401")
    _refused(run_core(here, "actions", "pause", "warehouse.insert", "--url", admin, "--token", READ), "403")
    _refused(run_core(here, "actions", "pause", "warehouse.nope", "--url", admin, "--token", WRITE), "404", "nope")
    _refused(run_core(here, "flows", "enable", "nope", "--url", admin, "--token", WRITE), "404", "nope")
    closed = admin.rsplit(":", 1)[0] + ":19399/admin/api"
    _refused(run_core(here, "flows", "list", "--url", closed, "--token", WRITE), "could not reach", "19399")


def test_retry_and_replay_over_the_admin_api(admin: str, seeded: dict[str, list[Job]], tmp_path: Path) -> None:  # noqa: F811
    here = _elsewhere(tmp_path)
    url = ("--url", admin, "--token", WRITE)
    done = run_core(here, "jobs", "retry", "--where", "status_in=discarded", "--reason", "fixed", *url)
    assert done.returncode == 0 and done.stdout == "retried 3 of 3 matching job(s)\n", done.stderr
    jobs = httpx.get(f"{admin}/store/jobs", params={"status_in": "awaiting", "actions_in": "warehouse.insert"},
                     headers=HEADERS["read"]).json()["jobs"]
    assert {j["id"] for j in jobs} >= {j.id for j in seeded["discarded"]}
    _refused(run_core(here, "jobs", "retry", "--where", "status_in=discarded", *url), "match")
    done = run_core(here, "jobs", "retry", "--status", "failed", *url)
    assert done.returncode == 2 and "with --url, select the jobs with --where" in done.stderr

    events = {j.event_id for group in seeded.values() for j in group}
    done = run_core(here, "events", "replay", "--to", "crm.notify", "--yes", *url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"replayed {len(events)} of {len(events)} matching event(s) into crm.notify\n"
    _refused(run_core(here, "events", "replay", "--to", "crm.nope", "--yes", *url), "400", "crm.notify")


def test_status_and_purge_over_the_admin_api(
    admin: str, store_url: str, seeded: dict[str, list[Job]], tmp_path: Path  # noqa: F811
) -> None:
    here = _elsewhere(tmp_path)
    plugins = "postgres" if store_url.startswith("postgresql:") else ""
    for args in (("status",), ("status", "--json")):
        done = run_core(here, *args, "--url", admin, "--token", READ)
        local = run_core(tmp_path / "project", *args, CORE_LOAD_PLUGINS=plugins)
        assert done.returncode == 0 and local.returncode == 0, (done.stderr, local.stderr)
        assert done.stdout == local.stdout and "warehouse.insert" in done.stdout

    def stored() -> int:
        return len(httpx.get(f"{admin}/store/events", params={"limit": 1000}, headers=HEADERS["read"]).json()["events"])

    before = stored()
    done = run_core(here, "purge", "--before", "2100-01-01T00:00:00Z", "--where", "status_in=discarded",
                    "--where", f"ids_in={seeded['discarded'][0].id}", "--yes", "--url", admin, "--token", WRITE)
    assert done.returncode == 0 and done.stdout.startswith("purged 1 event(s) received before "), done.stderr
    assert before - stored() == 1
    _refused(run_core(here, "purge", "--before", "2h", "--where", "min_attempts=1", "--yes", "--url", admin,
                      "--token", WRITE), "min_attempts")
    before = stored()
    done = run_core(here, "purge", "--before", "2100-01-01T00:00:00Z", "--yes", "--url", admin, "--token", WRITE)
    assert done.returncode == 0, done.stderr
    purged = before - stored()
    assert purged > 0 and done.stdout == f"purged {purged} event(s) received before 2100-01-01 00:00:00 UTC\n"
    assert done.stderr.splitlines()[-1] == "purging 20/20"
    _refused(run_core(here, "purge", "--before", "soon", "--yes", "--url", admin, "--token", WRITE), "soon")
    _refused(run_core(here, "purge", "--before", "2h", "--yes", "--url", admin, "--token", READ), "403")


def test_explain_over_the_admin_api(admin: str, store_url: str, tmp_path: Path) -> None:  # noqa: F811
    here = _elsewhere(tmp_path)
    (here / "event.json").write_text('{"name": "track", "context": {"user": "u1"}, "data": {"order": 1}}')
    args = ("explain", "--source", "web", "--trigger", "track", "event.json")
    plugins = "postgres" if store_url.startswith("postgresql:") else ""
    (tmp_path / "project" / "event.json").write_text((here / "event.json").read_text())
    local = run_core(tmp_path / "project", *args, CORE_LOAD_PLUGINS=plugins)
    done = run_core(here, *args, "--url", admin, "--token", READ)
    assert done.returncode == 0 and local.returncode == 0, (done.stderr, local.stderr)
    assert done.stdout == local.stdout and done.stdout.startswith("flows: web-to-warehouse\n")
    as_json = run_core(here, *args, "--json", CORE_ADMIN_URL=admin, CORE_ADMIN_TOKEN=READ)
    assert as_json.returncode == 0, as_json.stderr
    jobs = json.loads(as_json.stdout)["jobs"]
    assert [(j["destination"], j["action"], j["context"], j["data"]) for j in jobs] == [
        ("warehouse", "insert", {"user": "u1"}, {"order": 1})
    ]
    events = httpx.get(f"{admin}/store/events", params={"limit": 1000}, headers=HEADERS["read"]).json()["events"]
    assert all(e["source"] != "web" for e in events), "explain stored an event"
    _refused(run_core(here, "explain", "--source", "app", "--trigger", "track", "event.json", "--url", admin,
                      "--token", READ), "400", "web")
    _refused(run_core(here, *args, "--url", admin), "401")
