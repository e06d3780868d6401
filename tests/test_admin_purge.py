"""Purge by time (and by filter): ``POST /admin/api/store/purge`` answers 202 and purges in the background,
``GET /admin/api/operations/{id}`` follows it; filters the store lacks and malformed times are
clear 4xx; ``core purge --before`` does the same over the store directly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from core.admin import operations
from core.builtin.sqlite.store import SQLiteStore
from hookspecs import Status, WhereEvent
from tests.admin_kit import HEADERS, READ, WRITE, make_project, run_core, running
from tests.scheduler_kit import write_jobs
from tests.test_admin_api import _fail, finished

pytestmark = pytest.mark.slow
LATER = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _project(tmp_path: Path) -> Path:
    """A project with 3 events whose jobs are discarded (final) and 2 whose jobs wait."""
    project = make_project(tmp_path / "p")

    async def seed() -> None:
        store = SQLiteStore(f"sqlite:///{project / 'core.db'}")
        await store.open()
        try:
            await _fail(store, await write_jobs(store, "warehouse", "insert", 3), Status.DISCARDED)
            await write_jobs(store, "warehouse", "insert", 2)
        finally:
            await store.close()

    asyncio.run(seed())
    return project


def _events_left(project: Path) -> int:
    async def count() -> int:
        store = SQLiteStore(f"sqlite:///{project / 'core.db'}")
        await store.open()
        try:
            return len(await store.find_events(WhereEvent()))
        finally:
            await store.close()

    return asyncio.run(count())


def test_purge_route_runs_in_the_background(tmp_path: Path) -> None:
    project = _project(tmp_path)
    with (
        running(project, CORE_ADMIN_TOKEN=f"{READ},{WRITE}") as url,
        httpx.Client(base_url=url, headers=HEADERS["write"], timeout=30) as api,
    ):
        started = api.post("/store/purge", json={"before": LATER})
        assert started.status_code == 202, started.text
        body = started.json()
        assert body["kind"] == "purge" and body["by"] == "ops" and body["href"] == f"/admin/api/operations/{body['id']}"
        done = finished(api, body["href"])
        assert (done["state"], done["counts"], done["progress"]) == ("succeeded", {"purged": 3}, 1.0)
        assert done["error"] is None
        assert done["finished_at"] is not None
        unknown = api.post("/store/purge", json={"before": LATER, "where": {"names_in": "web"}})
        assert unknown.status_code == 400 and "names_in" in unknown.json()["error"]
        malformed = api.post("/store/purge", json={"before": "yesterday"})
        assert malformed.status_code == 400 and "ISO 8601" in malformed.json()["error"]
        assert api.post("/store/purge", json={}).status_code == 422
        assert api.get("/operations/nope").status_code == 404
        read_only = api.post("/store/purge", json={"before": LATER}, headers=HEADERS["read"])
        assert read_only.status_code == 403
    assert _events_left(project) == 2


def test_cli_purge(tmp_path: Path) -> None:
    project = _project(tmp_path)
    bad = run_core(project, "purge", "--before", "yesterday", "--yes")
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr and "Traceback" not in bad.stderr
    done = run_core(project, "purge", "--before", LATER, "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("purged 3 event(s) received before ")
    assert done.stderr.splitlines()[-1] == "purging 20/20"
    assert _events_left(project) == 2


def test_cli_purge_by_filter(tmp_path: Path) -> None:
    project = _project(tmp_path)
    none = run_core(project, "purge", "--before", LATER, "--where", "actions_in=crm.notify", "--yes")
    assert none.returncode == 0 and none.stdout.startswith("purged 0 event(s)"), none.stderr
    done = run_core(project, "purge", "--before", LATER, "--where", "status_in=discarded",
                    "--where", "actions_in=warehouse.insert", "--yes")
    assert done.returncode == 0 and done.stdout.startswith("purged 3 event(s)"), done.stderr
    assert _events_left(project) == 2
    bad = run_core(project, "purge", "--before", LATER, "--where", "min_attempts=1", "--yes")
    assert bad.returncode == 2 and "min_attempts" in bad.stderr and "status_in" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_an_operation_that_fails_says_why() -> None:
    async def run() -> tuple[operations.Operation, operations.Operation]:
        async def fail(operation: operations.Operation) -> None:
            operation.counts["purged"] = 7
            raise RuntimeError("the store went away")

        async def work(operation: operations.Operation) -> None:
            await asyncio.sleep(0)

        failed = operations.start("purge", "ops", {}, fail)
        done = operations.start("purge", "ops", {}, work)
        assert failed.state == done.state == "running"
        await asyncio.gather(*operations._tasks)
        return failed, done

    failed, done = asyncio.run(run())
    assert (failed.state, failed.error, failed.counts) == ("failed", "RuntimeError: the store went away", {"purged": 7})
    assert (done.state, done.progress, done.error) == ("succeeded", 1.0, None)
    assert failed.finished_at is not None and done.finished_at is not None
