"""``core status`` and ``core jobs retry --where``, over the store of a SQLite project."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from core.builtin.sqlite.store import SQLiteStore
from hookspecs import Job, Status
from tests.admin_kit import make_project, run_core
from tests.scheduler_kit import write_jobs
from tests.test_admin_api import _fail

pytestmark = pytest.mark.slow


async def _seed(path: Path) -> list[Job]:
    store = SQLiteStore(f"sqlite:///{path}")
    await store.open()
    try:
        failed = await write_jobs(store, "warehouse", "insert", 2)
        await write_jobs(store, "crm", "notify", 1)
        await _fail(store, failed, Status.FAILED)
        discarded = await write_jobs(store, "warehouse", "insert", 3)
        await _fail(store, discarded, Status.DISCARDED)
        return discarded
    finally:
        await store.close()


def test_status_lists_failing_actions_first(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    asyncio.run(_seed(project / "core.db"))
    shown = run_core(project, "status")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[0] == "ACTION" and lines[1].split()[0] == "warehouse.insert"
    rows = json.loads(run_core(project, "status", "--json").stdout)
    assert rows == [
        {"action": "warehouse.insert", "backlog": {"failed": 2}},
        {"action": "crm.notify", "backlog": {"acknowledged": 1}},
    ]


def test_jobs_retry_where(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    discarded = asyncio.run(_seed(project / "core.db"))
    done = run_core(
        project,
        "jobs",
        "retry",
        "--where",
        "status_in=discarded",
        "--where",
        "actions_in=warehouse.insert",
        "--reason",
        "fixed",
    )
    assert done.returncode == 0, done.stderr
    assert "retried 3 of 3 matching job(s)" in done.stdout
    shown = json.loads(run_core(project, "jobs", "show", discarded[0].id, "--json").stdout)
    assert shown["status"] == "awaiting" and shown["transitions"][-1]["error"].endswith(": fixed")
    nothing = run_core(project, "jobs", "retry", "--where", "status_in=discarded")
    assert nothing.returncode != 0 and "no job matches the filter" in nothing.stderr
    bad = run_core(project, "jobs", "retry", "--where", "created_after=yesterday")
    assert bad.returncode != 0 and "ISO 8601" in bad.stderr and "Traceback" not in bad.stderr


def test_events_replay_to_an_action(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    asyncio.run(_seed(project / "core.db"))
    done = run_core(project, "events", "replay", "--to", "crm.notify", "--where", "sources_in=test", "--yes")
    assert done.returncode == 0, done.stderr
    assert "replayed 6 of 6 matching event(s) into crm.notify" in done.stdout
    jobs = json.loads(run_core(project, "jobs", "list", "--action", "crm.notify", "--json").stdout)
    assert len(jobs) == 7
    unknown = run_core(project, "events", "replay", "--to", "crm.upsert")
    assert unknown.returncode != 0 and "crm.notify" in unknown.stderr and "Traceback" not in unknown.stderr


def test_actions_pause_and_resume(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    asyncio.run(_seed(project / "core.db"))
    paused = run_core(project, "actions", "pause", "warehouse.insert", "--reason", "down")
    assert paused.returncode == 0 and "paused warehouse.insert" in paused.stdout, paused.stderr
    again = run_core(project, "actions", "pause", "warehouse.insert")
    assert again.returncode != 0 and "paused already" in again.stderr
    unknown = run_core(project, "actions", "pause", "warehouse.upsert")
    assert unknown.returncode != 0 and "no action 'warehouse.upsert'" in unknown.stderr and "insert" in unknown.stderr
    assert "resumed warehouse.insert" in run_core(project, "actions", "resume", "warehouse.insert").stdout
    assert "paused crm" in run_core(project, "actions", "pause", "crm").stdout


def test_flows_list_disable_and_enable(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    asyncio.run(_seed(project / "core.db"))
    disabled = run_core(project, "flows", "disable", "web-to-warehouse", "--reason", "dw down")
    assert disabled.returncode == 0 and "disabled web-to-warehouse" in disabled.stdout, disabled.stderr
    again = run_core(project, "flows", "disable", "web-to-warehouse")
    assert again.returncode != 0 and "disabled already" in again.stderr
    [listed] = json.loads(run_core(project, "flows", "list", "--json").stdout)
    assert (listed["name"], listed["enabled"], listed["reason"]) == ("web-to-warehouse", False, "dw down")
    assert listed["actions"] == ["warehouse.insert"] and listed["disabled_by"]
    unknown = run_core(project, "flows", "disable", "web-to-crm")
    assert unknown.returncode != 0 and "no flow 'web-to-crm'" in unknown.stderr
    assert "flows: web-to-warehouse" in unknown.stderr and "Traceback" not in unknown.stderr
    assert "enabled web-to-warehouse" in run_core(project, "flows", "enable", "web-to-warehouse").stdout
    assert "not disabled" in run_core(project, "flows", "enable", "web-to-warehouse").stderr
    assert run_core(project, "flows", "list").stdout.splitlines()[1].split()[:5] == [
        "web-to-warehouse", "web", "*", "warehouse.insert", "yes"]
