"""Fast recovery in one process (issue 12): the jobs of a node the registry does not list are
recovered at once, by lease only when the registry cannot be read; a woken loop runs a pass
before its next tick; a scheduled pass keeps its short lease while a load outlasts it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.scheduler import recover
from core.scheduler.loop import ActionLoop, lease_key
from core.scheduler.runner import Runner
from hookspecs import OWNER_LAPSED, Action, Claim, Destination, Queue, Schedule, Status, Toolkit
from tests.scheduler_kit import all_in, eventually, ingest, opened


class Slow(Action):
    """Counts its loads; each lasts ``seconds``."""

    def __init__(self, name: str, seconds: float = 0.0) -> None:
        self.name = name  # type: ignore[misc]
        self.schedule = Schedule(interval="@every 1h")
        self.seconds = seconds
        self.loads = 0

    async def load(self, toolkit: Toolkit, queue: Queue) -> None:
        self.loads += 1
        await asyncio.sleep(self.seconds)


async def test_the_jobs_of_a_node_the_registry_does_not_list_are_recovered_at_once(tmp_path: Path) -> None:
    async with opened(tmp_path, [Destination("dw", [Slow("gone"), Slow("mine")])]) as runtime:
        runtime.registry_shared = True  # the local registry stands for a shared one: this process's nodes
        [lost] = await ingest(runtime, "dw", "gone")
        [kept] = await ingest(runtime, "dw", "mine")
        now = datetime.now(UTC)
        await runtime.store.claim(Claim("a-dead-node", 300), destination="dw", action="gone", limit=1, now=now)
        await runtime.store.claim(Claim(runtime.node_id, 300), destination="dw", action="mine", limit=1, now=now)
        assert [job.id for job in await recover(runtime)] == [lost.id]
        got = await runtime.store.get_job(lost.id)
        assert got is not None and (got.status, got.transitions[-1].error) == (Status.FAILED, OWNER_LAPSED)
        assert await all_in(runtime, [kept.id], Status.EXECUTING)


async def test_recovery_is_by_lease_only_when_the_registry_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with opened(tmp_path, [Destination("dw", [Slow("gone")])]) as runtime:
        runtime.registry_shared = True
        [job] = await ingest(runtime, "dw", "gone")
        await runtime.store.claim(Claim("a-dead-node", 300), destination="dw", action="gone", limit=1,
                                  now=datetime.now(UTC))

        async def unreadable() -> list[object]:
            raise ConnectionError("registry down")

        assert runtime.registry is not None
        monkeypatch.setattr(runtime.registry, "nodes", unreadable)
        assert await recover(runtime) == []
        assert await all_in(runtime, [job.id], Status.EXECUTING)


def _loop(runtime: object, action: Slow, stopping: asyncio.Event, **lease: float) -> ActionLoop:
    dest, act = runtime.pipeline.action(f"dw.{action.name}")  # type: ignore[attr-defined]
    return ActionLoop(runtime, Runner(runtime, load_timeout=5), dest, act, stopping,  # type: ignore[arg-type]
                      batch_size=10, lease_seconds=30, poll_seconds=1, **lease)


async def test_a_woken_loop_runs_a_pass_before_its_next_tick(tmp_path: Path) -> None:
    action = Slow("hourly")
    async with opened(tmp_path, [Destination("dw", [action])]) as runtime:
        stopping = asyncio.Event()
        loop = _loop(runtime, action, stopping)
        task = asyncio.create_task(loop.run())
        try:
            await asyncio.sleep(0.3)  # the pass at start found nothing due; the next tick is in an hour
            [job] = await ingest(runtime, "dw", "hourly")
            loop.wake()
            await eventually(lambda: all_in(runtime, [job.id], Status.SUCCEEDED), timeout=5)
        finally:
            stopping.set()
            await asyncio.wait_for(task, 10)


async def test_a_pass_keeps_its_short_lease_while_a_load_outlasts_it(tmp_path: Path) -> None:
    action = Slow("long", seconds=1.0)
    async with opened(tmp_path, [Destination("dw", [action])]) as runtime:
        assert runtime.supervisor is not None
        [job] = await ingest(runtime, "dw", "long")
        loop = _loop(runtime, action, asyncio.Event(), action_lease_seconds=0.3)
        passing = asyncio.create_task(loop.tick(datetime.now(UTC)))
        await asyncio.sleep(0.7)  # past two lease TTLs, the load still running
        assert await runtime.supervisor.acquire(lease_key("dw", "long"), owner="another-node", ttl=30) is None
        assert await asyncio.wait_for(passing, 10) == 1
        assert await all_in(runtime, [job.id], Status.SUCCEEDED)
        assert await runtime.supervisor.acquire(lease_key("dw", "long"), owner="another-node", ttl=30) is not None
