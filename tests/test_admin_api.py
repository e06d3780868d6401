"""The admin API through a real HTTP client against a running ``core start admin`` process,
on SQLite and PostgreSQL: the auth matrix, loopback enforcement, every read route with its
filters and paging, retry by ids and by filter, replay and explain, and clear 4xx errors."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.builtin.sqlite.store import SQLiteStore
from hookspecs import Job, Status, Store, Transition, new_id
from tests.admin_kit import HEADERS, READ, WRITE, make_project, run_core, running
from tests.scheduler_kit import write_jobs

pytestmark = pytest.mark.slow
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
TOKENS = f"{READ},{WRITE}"


async def _open(url: str) -> Store:
    store: Store
    if url.startswith("postgresql:"):
        from core_plugin_postgres.store import PostgresStore

        store = PostgresStore(url)
    else:
        store = SQLiteStore(url)
    await store.open()
    return store


async def _fail(store: Store, jobs: list[Job], final: Status) -> None:
    """Move ``jobs`` acknowledged -> executing -> ``final`` (attempt 1), as a scheduler would."""
    now = datetime.now(UTC)
    for before, after in ((Status.ACKNOWLEDGED, Status.EXECUTING), (Status.EXECUTING, final)):
        refused = await store.add_transitions(
            [
                Transition(
                    id=new_id(),
                    job_id=j.id,
                    event_id=j.event_id,
                    attempt=1,
                    state_before=before,
                    state_after=after,
                    created_at=now,
                    error="boom" if after is final else None,
                )
                for j in jobs
            ]
        )
        assert refused == []


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A store URL: SQLite in ``tmp_path``, or a fresh PostgreSQL database of this test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'project' / 'core.db'}"
        return
    import asyncpg

    name = f"core_admin_{secrets.token_hex(6)}"
    server = await asyncpg.connect(f"{POSTGRES}/postgres")
    try:
        await server.execute(f'CREATE DATABASE "{name}"')
        yield f"{POSTGRES}/{name}"
        await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await server.close()


@pytest.fixture()
async def seeded(store_url: str, tmp_path: Path) -> dict[str, list[Job]]:
    """3 discarded and 2 failed warehouse.insert jobs, 2 acknowledged crm.notify jobs."""
    make_project(tmp_path / "project", store_url)
    store = await _open(store_url)
    try:
        discarded = await write_jobs(store, "warehouse", "insert", 3)
        failed = await write_jobs(store, "warehouse", "insert", 2)
        waiting = await write_jobs(store, "crm", "notify", 2)
        await _fail(store, discarded, Status.DISCARDED)
        await _fail(store, failed, Status.FAILED)
    finally:
        await store.close()
    return {"discarded": discarded, "failed": failed, "waiting": waiting}


@pytest.fixture()
def api(seeded: dict[str, list[Job]], store_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """A client of a running ``core start admin`` with a read and a write token."""
    plugins = "postgres" if store_url.startswith("postgresql:") else ""
    with (
        running(tmp_path / "project", CORE_ADMIN_TOKEN=TOKENS, plugins=plugins) as url,
        httpx.Client(base_url=url, headers=HEADERS["read"], timeout=30) as client,
    ):
        yield client


def _root(api: httpx.Client) -> str:
    return str(api.base_url).rstrip("/")


def test_the_auth_matrix(api: httpx.Client) -> None:
    no_token = httpx.get(f"{_root(api)}/destinations")
    assert no_token.status_code == 401 and "Authorization: Bearer" in no_token.json()["error"]
    assert no_token.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(f"{_root(api)}/destinations", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "not one of admin.tokens" in wrong.json()["error"]
    assert api.get("/destinations").status_code == 200
    read_only = api.post("/store/jobs/retry", json={"where": {"status_in": "discarded"}})
    assert read_only.status_code == 403 and "read-only" in read_only.json()["error"]
    right = api.post(
        "/store/jobs/retry", json={"where": {"status_in": "discarded"}, "dry_run": True}, headers=HEADERS["write"]
    )
    assert right.status_code == 200 and right.json()["retried"] == 3 and right.json()["by"] == "ops"
    assert httpx.get(f"{_root(api)}/openapi.json").status_code == 401


def test_read_routes(api: httpx.Client, seeded: dict[str, list[Job]]) -> None:
    assert api.get("/_health").json()["status"] == "ok"
    assert [s["name"] for s in api.get("/sources").json()["sources"]] == ["web"]
    assert api.get("/sources/web/triggers/track").json()["flows"] == ["web-to-warehouse"]
    action = api.get("/destinations/warehouse/actions/insert").json()
    assert action["backlog"] == {"failed": 2} and action["schedule"]["max_retries"] == 2
    assert action["paused"] is False
    assert "admin.tokens" in api.get("/options").json()["settings"]
    assert api.get("/options").json()["settings"]["admin.tokens"] == "***"
    assert api.get("/nodes").json() == {"nodes": []}
    assert api.get("/wanderer/migrations").json() == {"migrations": []}

    jobs = api.get("/store/jobs", params={"status_in": "discarded,failed", "actions_in": "warehouse.insert"}).json()
    assert len(jobs["jobs"]) == 5 and jobs["next"] is None
    assert len(api.get("/store/jobs", params={"status_notin": "discarded"}).json()["jobs"]) == 4
    assert len(api.get("/store/jobs", params={"min_attempts": 1}).json()["jobs"]) == 5
    assert len(api.get("/store/jobs", params={"max_attempts": 0}).json()["jobs"]) == 2
    assert len(api.get("/store/jobs", params={"destinations_notin": "crm"}).json()["jobs"]) == 5
    assert api.get("/store/jobs", params={"created_after": "1h", "created_before": "2999-01-01"}).json()["jobs"]
    # keyset paging: pages of 2 cover every job once, in id order
    seen, after = [], None
    while True:
        page = api.get("/store/jobs", params={"limit": 2, **({"after": after} if after else {})}).json()
        seen += [j["id"] for j in page["jobs"]]
        after = page["next"]
        if after is None:
            break
    every = [j.id for group in seeded.values() for j in group]
    assert sorted(seen) == sorted(every) and len(seen) == len(every)

    job = seeded["discarded"][0]
    assert api.get(f"/store/jobs/{job.id}").json()["status"] == "discarded"
    moves = api.get(f"/store/jobs/{job.id}/transitions").json()["transitions"]
    assert [m["state_after"] for m in moves] == ["acknowledged", "executing", "discarded"]
    event = api.get(f"/store/events/{job.event_id}").json()
    assert [j["id"] for j in event["jobs"]] == [job.id]
    assert len(api.get("/store/events", params={"sources_in": "test"}).json()["events"]) == 7


def test_errors_are_clear_4xx(api: httpx.Client) -> None:
    cases = {
        "/store/jobs?created_after=yesterday": (400, "neither an ISO 8601 time"),
        "/store/jobs?status_in=broken": (400, "not a job status"),
        "/store/jobs?limit=0": (400, "limit"),
        "/store/jobs?min_attempts=3&max_attempts=1": (400, "no job can match"),
        "/store/jobs/nope": (404, "no job 'nope'"),
        "/store/events/nope": (404, "no event 'nope'"),
        "/destinations/nowhere": (404, "no destination 'nowhere'"),
        "/destinations/warehouse/actions/upsert": (404, "no action 'warehouse.upsert'"),
        "/sources/web/triggers/nope": (404, "no trigger"),
        "/wanderer/migrations/x@1": (404, "no migration"),
        "/no/such/route": (404, "no such admin route"),
    }
    for path, (status, text) in cases.items():
        response = api.get(path)
        assert response.status_code == status, path
        assert text in response.json()["error"], path
    write = HEADERS["write"]
    assert api.get("/destinations/nowhere").json()["allowed"] == ["crm", "warehouse"]
    nothing = api.post(
        "/store/jobs/retry", json={"where": {"actions_in": "crm.notify", "status_in": "failed"}}, headers=write
    )
    assert nothing.status_code == 404 and "no job matches the filter" in nothing.json()["error"]
    unknown = api.post("/store/events/replay", json={"to": "crm.upsert", "where": {}}, headers=write)
    assert unknown.status_code == 400 and "crm.notify" in unknown.json()["allowed"]
    assert api.post("/store/jobs/retry", content=b"{", headers=write).status_code == 400
    assert api.post("/store/jobs/retry", json={"ids": [], "where": {}}, headers=write).status_code == 422
    bad = api.post("/store/jobs/retry", json={"where": {"colour": "red"}}, headers=write)
    assert bad.status_code == 422 and "colour" in bad.json()["error"]


def test_retry_by_filter_and_by_ids_appends_transitions(api: httpx.Client, seeded: dict[str, list[Job]]) -> None:
    write = HEADERS["write"]
    response = api.post(
        "/store/jobs/retry",
        headers=write,
        json={
            "where": {"status_in": "discarded", "actions_in": "warehouse.insert", "created_after": "1h"},
            "reason": "warehouse fixed",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() | {"refused": []} == {
        "matched": 3,
        "retried": 3,
        "dry_run": False,
        "refused_count": 0,
        "refused": [],
        "by": "ops",
    }
    job = seeded["discarded"][0]
    moves = api.get(f"/store/jobs/{job.id}/transitions").json()["transitions"]
    assert [m["state_after"] for m in moves] == ["acknowledged", "executing", "discarded", "awaiting"]
    assert moves[-1]["error"] == "retried by ops: warehouse fixed" and moves[2]["error"] == "boom"
    ids = [j.id for j in seeded["failed"]] + [seeded["waiting"][0].id, "missing"]
    named = api.post("/store/jobs/retry", headers=write, json={"ids": ids}).json()
    assert named["retried"] == 2 and named["refused_count"] == 2
    assert any("acknowledged" in r for r in named["refused"]) and "missing: no such job" in named["refused"]


def test_replay_into_an_action_and_explain(api: httpx.Client, seeded: dict[str, list[Job]]) -> None:
    write = HEADERS["write"]
    events = [j.event_id for j in seeded["discarded"]]
    replayed = api.post("/store/events/replay", headers=write, json={"to": "crm.notify", "ids": events}).json()
    assert replayed["matched"] == 3 and replayed["created"] == 3
    for event_id in events:
        jobs = api.get(f"/store/events/{event_id}").json()["jobs"]
        assert sorted(f"{j['destination']}.{j['action']}" for j in jobs) == ["crm.notify", "warehouse.insert"]
    everything = api.post(
        "/store/events/replay",
        headers=write,
        json={"to": "crm.notify", "where": {"sources_in": "test"}, "dry_run": True},
    ).json()
    assert everything["matched"] == 7 and everything["created"] == 7 and everything["dry_run"] is True
    explained = api.post("/explain", json={"source": "web", "trigger": "track", "event": {"data": {"x": 1}}}).json()
    assert explained["flows"] == ["web-to-warehouse"]
    assert [(j["destination"], j["action"], j["data"]) for j in explained["jobs"]] == [
        ("warehouse", "insert", {"x": 1})
    ]
    assert api.post("/explain", json={"source": "app", "trigger": "track"}).json()["allowed"] == ["web"]
    before = len(api.get("/store/events").json()["events"])
    assert before == 7  # explain stored nothing


def finished(api: httpx.Client, href: str) -> dict[str, Any]:
    """The background operation at ``href`` once it ended (or after 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        operation: dict[str, Any] = api.get(href.removeprefix("/admin/api")).json()
        if operation["state"] != "running" or time.monotonic() > deadline:
            return operation
        time.sleep(0.05)


def test_purge_by_filter_takes_only_finished_events_whose_jobs_all_match(
    api: httpx.Client, seeded: dict[str, list[Job]]
) -> None:
    write, later = HEADERS["write"], "2100-01-01T00:00:00Z"
    replayed = api.post("/store/events/replay", headers=write,
                        json={"to": "crm.notify", "ids": [seeded["discarded"][0].event_id]})
    assert replayed.json()["created"] == 1, replayed.text  # that event now has a job still to run
    where = {"actions_in": "warehouse.insert", "status_in": "discarded"}
    started = api.post("/store/purge", headers=write, json={"before": later, "where": where, "reason": "cleanup"})
    assert started.status_code == 202, started.text
    done = finished(api, started.json()["href"])
    assert (done["state"], done["counts"], done["params"]["where"]) == ("succeeded", {"purged": 2}, where)
    assert done["params"]["reason"] == "cleanup" and done["by"] == "ops"
    for job in seeded["discarded"][1:]:
        assert api.get(f"/store/jobs/{job.id}").status_code == 404
        assert api.get(f"/store/events/{job.event_id}").status_code == 404
    kept = seeded["discarded"][0]
    assert api.get(f"/store/jobs/{kept.id}").status_code == 200, "purged a job whose event has one to run"
    for job in seeded["failed"] + seeded["waiting"]:
        assert api.get(f"/store/jobs/{job.id}").status_code == 200, "purged a job not final or not matching"
    refused = api.post("/store/purge", headers=write, json={"before": later, "where": {"min_attempts": 1}})
    assert refused.status_code == 400 and "min_attempts" in refused.json()["error"]
    assert "status_in" in refused.json()["allowed"]
    mixed = api.post("/store/purge", headers=write,
                     json={"before": later, "where": {"actions_in": "warehouse.insert,crm.notify"}})
    assert mixed.status_code == 400 and "one destination" in mixed.json()["error"]
    bad = api.post("/store/purge", headers=write, json={"before": later, "where": {"status_in": "lost"}})
    assert bad.status_code == 400 and "discarded" in bad.json()["allowed"]
    assert api.post("/store/purge", json={"before": later, "where": where}).status_code == 403


def test_the_other_routes_answer_on_this_store(api: httpx.Client, seeded: dict[str, list[Job]]) -> None:
    """The routes the tests above leave out, on this store: one source, one migration and its
    runs (none stored: a clear 404), a destination's resume, a background operation."""
    write = HEADERS["write"]
    assert api.get("/sources/web").json()["name"] == "web"
    assert api.get("/sources/nope").json()["allowed"] == ["web"]
    for path in ("/wanderer/migrations/destination:warehouse@001", "/wanderer/migrations/x@1/transitions"):
        missing = api.get(path)
        assert missing.status_code == 404 and "error" in missing.json(), missing.text
    assert api.post("/destinations/crm/pause", headers=write, json={"reason": "down"}).status_code == 200
    assert api.post("/destinations/crm/resume", headers=write).json()["resumed"] == "crm"
    assert api.post("/destinations/crm/resume", headers=write).status_code == 409
    started = api.post("/store/purge", headers=write, json={"before": "720h"}).json()
    operation = finished(api, f"/admin/api/operations/{started['id']}")
    assert operation["id"] == started["id"] and operation["state"] == "succeeded"
    assert api.get("/operations/nope").status_code == 404


def test_no_token_means_loopback_only(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    refused = run_core(project, "start", "admin", CORE_ADMIN_HOST="0.0.0.0")
    assert refused.returncode != 0
    assert "with no token configured" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    with running(project, CORE_ADMIN_HOST="0.0.0.0", CORE_ADMIN_TOKEN=TOKENS) as url:
        assert httpx.get(f"{url}/_health", headers=HEADERS["read"]).status_code == 200
    with running(project) as url:  # loopback, no token: open
        assert httpx.get(f"{url}/_health").status_code == 200


def test_core_start_runs_the_admin_api_beside_the_gateway(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    with running(project, CORE_GATEWAY_PORT="0") as url:
        assert httpx.get(f"{url}/sources").json()["sources"][0]["name"] == "web"
        schema = httpx.get(f"{url}/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert "/admin/api/store/jobs/{job}/transitions" in schema["paths"]
    assert "post" in schema["paths"]["/admin/api/store/jobs/retry"]


def test_tokens_are_checked_in_configuration(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    result = run_core(project, "start", "admin", CORE_ADMIN_TOKEN="ops:admin:s3cr3t-value")
    assert result.returncode != 0 and "NAME:ACCESS:SECRET" in result.stdout + result.stderr
    assert "s3cr3t-value" not in result.stdout + result.stderr


def test_pause_and_resume_an_action_persist_in_the_store(api: httpx.Client) -> None:
    write = HEADERS["write"]
    assert api.post("/destinations/warehouse/actions/insert/pause", json={"reason": "x"}).status_code == 403
    done = api.post("/destinations/warehouse/actions/insert/pause", json={"reason": "load test"}, headers=write)
    assert done.json() == {"paused": "warehouse.insert", "by": "ops", "reason": "load test"}
    assert api.get("/destinations/warehouse/actions/insert").json()["paused"] is True
    assert api.get("/destinations/warehouse").json()["paused"] is False
    again = api.post("/destinations/warehouse/actions/insert/pause", headers=write)
    assert again.status_code == 409 and "paused already" in again.json()["error"]
    assert api.post("/destinations/nowhere/pause", headers=write).status_code == 404
    assert (
        api.post("/destinations/warehouse/actions/insert/resume", headers=write).json()["resumed"] == "warehouse.insert"
    )
    assert api.get("/destinations/warehouse/actions/insert").json()["paused"] is False
    assert api.post("/destinations/warehouse/actions/insert/resume", headers=write).status_code == 409


def test_a_scheduled_action_and_its_destination_name_the_node_holding_its_lease(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    config = project / "core.toml"
    config.write_text(config.read_text().replace('supervisor = ""', 'supervisor = "store"'))
    # A process takes the action's lease and dies without releasing it: it stays held for its TTL.
    hold = (
        "import asyncio, os\n"
        "from core.builtin.sqlite.supervisor import SQLiteSupervisor\n"
        "async def main():\n"
        "    supervisor = SQLiteSupervisor('sqlite:///core.db')\n"
        "    await supervisor.open()\n"
        "    lease = await supervisor.acquire('action:warehouse/insert', owner='node-x', ttl=600)\n"
        "    print(lease.token, flush=True)\n"
        "    os._exit(0)\n"
        "asyncio.run(main())\n"
    )
    token = subprocess.run([sys.executable, "-c", hold], cwd=project, capture_output=True, text=True, check=True)
    with running(project, CORE_ADMIN_TOKEN=TOKENS) as url, httpx.Client(base_url=url, headers=HEADERS["read"]) as api:
        action = api.get("/destinations/warehouse/actions/insert").json()
        assert action["lease"]["owner"] == "node-x" and action["lease"]["token"] == int(token.stdout)
        assert datetime.fromisoformat(action["lease"]["expires_at"]) > datetime.now(UTC)
        listed = api.get("/destinations").json()["destinations"]
        assert [a["lease"]["owner"] for d in listed for a in d["actions"] if "lease" in a] == ["node-x"]
        assert "lease" not in api.get("/destinations/crm/actions/notify").json(), "a realtime action has no lease"


def test_disable_and_enable_a_flow_persist_in_the_store(api: httpx.Client) -> None:
    write = HEADERS["write"]
    assert api.post("/flows/web-to-warehouse/disable", json={"reason": "x"}).status_code == 403
    done = api.post("/flows/web-to-warehouse/disable", json={"reason": "dw down"}, headers=write)
    assert done.json() == {"disabled": "web-to-warehouse", "by": "ops", "reason": "dw down"}
    [flow] = api.get("/flows").json()["flows"]
    assert (flow["enabled"], flow["disabled_by"], flow["reason"], flow["actions"]) == (
        False, "ops", "dw down", ["warehouse.insert"])
    again = api.post("/flows/web-to-warehouse/disable", headers=write)
    assert again.status_code == 409 and "disabled already" in again.json()["error"]
    unknown = api.post("/flows/nowhere/disable", headers=write)
    assert unknown.status_code == 404 and unknown.json()["allowed"] == ["web-to-warehouse"]
    explained = api.post("/explain", json={"source": "web", "trigger": "track", "event": {"data": {}}}).json()
    assert (explained["flows"], explained["disabled_flows"], explained["jobs"]) == ([], ["web-to-warehouse"], [])
    enabled = api.post("/flows/web-to-warehouse/enable", headers=write)
    assert enabled.json() == {"enabled": "web-to-warehouse", "by": "ops"}
    assert api.get("/flows").json()["flows"][0]["enabled"] is True
    assert api.post("/flows/web-to-warehouse/enable", headers=write).status_code == 409
