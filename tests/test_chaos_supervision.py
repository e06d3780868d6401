"""Supervision across real processes on the default configuration (SQLite store, the
supervisor following it): two gateways run each cron tick once, and a gateway frozen with
SIGSTOP past its trigger's lease stores nothing of the ticks it no longer owns (issue 12)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from core.testing.processes import Deployment
from hookspecs import Page, WhereEvent
from tests.chaos_kit import APP, figures, loads, open_store  # noqa: F401 - fixtures
from tests.scheduler_kit import write_jobs

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

#: A cron source ticking every second; each event says which tick (the second it is nearest) and which process.
CRON_APP = """
import os
import time
from hookspecs import Action, CronTrigger, Destination, EventDraft, Flow, Schedule, Source, hookimpl

async def pull(toolkit):
    return [EventDraft(data={"second": round(time.time()), "pid": os.getpid()}, name="tick")]

class Keep(Action):
    name = "keep"
    schedule = Schedule(interval="@every 1h")

    async def load(self, toolkit, queue):
        pass

@hookimpl
def core_register_sources():
    return [Source("clock", triggers=[CronTrigger("tick", "@every 1s", pull)])]

@hookimpl
def core_register_destinations():
    return [Destination("sink", [Keep()])]

@hookimpl
def core_register_flows():
    return [Flow("ticks", source="clock", actions=["sink.keep"])]
"""


async def _ticks(directory: Path) -> list[tuple[int, int]]:
    """(second, pid) of every stored tick event."""
    store = await open_store(directory)
    try:
        events = await store.find_events(WhereEvent(sources=["clock"], page=Page(limit=100_000)))
    finally:
        await store.close()
    return [(int(e.data["second"]), int(e.data["pid"])) for e in events]


def _count(directory: Path) -> int:
    return len(asyncio.run(_ticks(directory)))


def _deployment(directory: Path, lease_seconds: float) -> Deployment:
    # No supervisor key: the default follows the SQLite store.
    return Deployment(directory, CRON_APP, settings={"gateway": {"lease_seconds": lease_seconds}})


async def test_two_gateways_on_the_default_configuration_run_each_tick_once(
    tmp_path: Path, figures  # noqa: F811 - the fixture
) -> None:
    with _deployment(tmp_path, 3) as deploy:
        deploy.start("gateway")
        deploy.start("gateway")
        await asyncio.to_thread(deploy.wait_until, lambda: _count(tmp_path) >= 6, "six ticks", 60)
    ticks = await _ticks(tmp_path)
    twice = [second for second, n in Counter(s for s, _ in ticks).items() if n > 1]
    figures(f"{len(ticks)} ticks stored by {len({p for _, p in ticks})} process(es), {len(twice)} run twice")
    assert twice == [], f"ticks run by both gateways: {twice}"


async def test_a_frozen_cron_holder_stores_nothing_of_a_tick_it_no_longer_owns(
    tmp_path: Path, figures  # noqa: F811 - the fixture
) -> None:
    with _deployment(tmp_path, 2) as deploy:
        first = deploy.start("gateway")
        await asyncio.to_thread(deploy.wait_until, lambda: _count(tmp_path) >= 2, "the first gateway's ticks", 60)
        deploy.start("gateway")
        first.process.send_signal(signal.SIGSTOP)
        frozen_at = time.time()
        try:
            await asyncio.sleep(6)  # three times the lease: the second gateway takes the trigger
        finally:
            first.process.send_signal(signal.SIGCONT)
        await asyncio.sleep(4)
    ticks = await _ticks(tmp_path)
    stale = [(s, p) for s, p in ticks if p == first.process.pid and s >= frozen_at + 1]
    twice = [second for second, n in Counter(s for s, _ in ticks).items() if n > 1]
    taken = [s for s, p in ticks if p != first.process.pid]
    figures(f"{len(ticks)} ticks, {len(taken)} by the second gateway, {len(stale)} stale writes, {len(twice)} twice")
    assert taken, "the second gateway never took the trigger over"
    assert stale == [] and twice == [], f"stale: {stale}, twice: {twice}"
    assert "lost" in first.output(), first.output()



def test_a_second_process_beside_one_on_local_is_refused_naming_the_fix(tmp_path: Path) -> None:
    with Deployment(tmp_path, CRON_APP, settings={"supervisor": "local://"}) as deploy:
        first = deploy.start("gateway")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
        second = subprocess.run(
            [sys.executable, "-m", "core", "start", "gateway", "--port", "0"], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=60,
        )
        assert first.process.poll() is None, first.output()
    assert second.returncode != 0, second.stdout + second.stderr
    assert f"another process uses this store: gateway pid {first.process.pid}" in second.stderr
    assert "local:// locks within one process only" in second.stderr and "Traceback" not in second.stderr


async def test_two_schedulers_on_the_default_configuration_never_run_a_job_twice_at_once(
    tmp_path: Path, figures  # noqa: F811 - the fixture
) -> None:
    store = await open_store(tmp_path)
    try:
        seeded = await write_jobs(store, "warehouse", "export", 60)
    finally:
        await store.close()
    (tmp_path / "mode").write_text("slow 0.3")
    settings = {"scheduler": {"poll_seconds": 0.2, "batch_size": 10, "lease_seconds": 30, "load_timeout": 20}}
    with Deployment(tmp_path, APP.replace("MAX_RETRIES", "3"), settings=settings) as deploy:
        deploy.start("scheduler")
        deploy.start("scheduler")
        deploy.wait_until(lambda: len(loads(tmp_path, "done")) >= 6, "every job to be loaded", 90)
    starts, dones = loads(tmp_path, "start"), loads(tmp_path, "done")
    runs = Counter(job for _, jobs in starts for job in jobs)
    twice = [job for job, n in runs.items() if n > 1]
    figures(f"{len(seeded)} jobs, {len(starts)} loads, {len(twice)} jobs loaded twice")
    assert twice == [] and set(runs) == {job.id for job in seeded} and len(dones) == len(starts)
