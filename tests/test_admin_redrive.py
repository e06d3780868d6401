"""Bulk redrive in bounded memory with progress: 10,000 discarded jobs retried by filter on
SQLite (counted first by the route's dry run), each once, progress reported after each page,
the store never asked for more than a page of jobs (nor given more than a page of transitions)
at a time; and ``core jobs retry --where`` reporting its progress as plain lines off a terminal, a rich bar on
one (a pseudo-terminal)."""

from __future__ import annotations

import asyncio
import os
import pty
import resource
import select
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.admin import filters
from core.admin.local import local_call
from core.admin.redrive import Redriven, redrive
from core.admin.write import retry_jobs
from core.builtin.sqlite.store import SQLiteStore
from core.paging import SCAN_PAGE
from hookspecs import Job, RefusedTransition, Status, Transition, WhereJob
from tests.admin_kit import environment, make_project, run_core
from tests.scheduler_kit import write_jobs
from tests.test_admin_api import _fail

pytestmark = pytest.mark.slow
JOBS = 10_000


class CountingStore(SQLiteStore):
    """A real SQLite store noting the page limits asked of ``find_jobs`` and the size of each
    ``add_transitions`` batch: the most jobs a redrive held at once."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.limits: list[int] = []
        self.batches: list[int] = []

    async def find_jobs(self, where: WhereJob) -> list[Job]:
        self.limits.append(where.page.limit)
        return await super().find_jobs(where)

    async def add_transitions(self, transitions: Sequence[Transition]) -> list[RefusedTransition]:
        self.batches.append(len(transitions))
        return await super().add_transitions(transitions)


async def _discarded(store: SQLiteStore, count: int) -> list[Job]:
    jobs = await write_jobs(store, "warehouse", "insert", count)
    await _fail(store, jobs, Status.DISCARDED)
    return jobs


def _retried_per_job(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT job_id, count(*) FROM transitions WHERE state_after = 'awaiting' AND error LIKE 'retried by %'"
            " GROUP BY job_id"
        ).fetchall()
    return dict(rows)


def test_redrive_of_10000_jobs_pages_through_them(tmp_path: Path) -> None:
    db = tmp_path / "core.db"

    progress: list[tuple[int, int]] = []

    async def run() -> tuple[list[Job], CountingStore, Redriven]:
        store = CountingStore(f"sqlite:///{db}")
        await store.open()
        try:
            jobs = await _discarded(store, JOBS)
            store.limits.clear()
            store.batches.clear()
            rss_before, started = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
            where: dict[str, Any] = {"status_in": "discarded"}
            body = {"where": where, "reason": "fixed"}
            counted = await retry_jobs(local_call(SimpleNamespace(store=store), body | {"dry_run": True}))
            assert (counted["matched"], counted["retried"]) == (JOBS, JOBS), "the route's dry run"
            assert not store.batches, "a dry run wrote"
            result = await redrive(store, filters.job_filter(where), "retried by ops: fixed",
                                   total=JOBS, progress=lambda done, total: progress.append((done, total)))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(f"\nredrive of {JOBS} jobs: {time.perf_counter() - started:.2f}s, peak RSS {peak // 1024} MiB "
                  f"({rss_before // 1024} MiB before it, after seeding)")
            return jobs, store, result
        finally:
            await store.close()

    jobs, store, result = asyncio.run(run())
    assert result.matched == JOBS and result.retried == JOBS and result.refused_count == 0
    assert progress == [(n, JOBS) for n in range(SCAN_PAGE, JOBS + 1, SCAN_PAGE)], "progress after each page"
    assert _retried_per_job(db) == {j.id: 1 for j in jobs}
    assert store.limits and max(store.limits) <= SCAN_PAGE
    assert len(store.batches) >= JOBS // SCAN_PAGE and max(store.batches) <= SCAN_PAGE


def test_cli_retry_where_reports_progress_lines(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")

    async def seed() -> None:
        store = SQLiteStore(f"sqlite:///{project / 'core.db'}")
        await store.open()
        try:
            await _discarded(store, 2 * SCAN_PAGE + 5)
        finally:
            await store.close()

    asyncio.run(seed())
    done = run_core(project, "jobs", "retry", "--where", "status_in=discarded", "--reason", "fixed")
    assert done.returncode == 0, done.stderr
    total = 2 * SCAN_PAGE + 5
    assert done.stderr.splitlines() == [f"retried {SCAN_PAGE}/{total}", f"retried {2 * SCAN_PAGE}/{total}",
                                        f"retried {total}/{total}"]
    assert f"retried {total} of {total} matching job(s)" in done.stdout
    assert len(_retried_per_job(project / "core.db")) == total


def test_cli_retry_where_draws_a_bar_on_a_terminal(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")

    async def seed() -> None:
        store = SQLiteStore(f"sqlite:///{project / 'core.db'}")
        await store.open()
        try:
            await _discarded(store, SCAN_PAGE + 1)
        finally:
            await store.close()

    asyncio.run(seed())
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "jobs", "retry", "--where", "status_in=discarded", "--yes"],
        cwd=project, env=environment(COLUMNS="100", TERM="xterm"), stdin=follower, stdout=follower, stderr=follower,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        try:
            chunk = os.read(leader, 65536) if ready else b""
        except OSError:  # the terminal closed: the process exited
            break
        seen += chunk
        if not chunk and process.poll() is not None:
            break
    os.close(leader)
    assert process.wait(timeout=30) == 0, seen.decode(errors="replace")
    text = seen.decode(errors="replace")
    assert f"{SCAN_PAGE + 1}/{SCAN_PAGE + 1}" in text and "━" in text  # rich's bar and its M/N column
    assert f"retried {SCAN_PAGE + 1} of {SCAN_PAGE + 1} matching job(s)" in text
