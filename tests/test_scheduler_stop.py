"""Stopping the scheduler in process: no load starts after the stop, and a load that ignores
its cancellation past the grace period still has its jobs released at once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from core.scheduler import run_scheduler
from hookspecs import Action, Destination, Queue, Schedule, Status, Toolkit
from tests.scheduler_kit import eventually, ingest, opened, statuses


class Stubborn(Action):
    """Loads for a long time and, cancelled, goes on a while (a load that swallows cancellation)."""

    name = "export"
    schedule = Schedule(interval="@every 1s")

    def __init__(self) -> None:
        self.started: list[int] = []

    async def load(self, toolkit: Toolkit, queue: Queue) -> Any:
        self.started.append(len(queue.jobs))
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(1)  # ignores the cancellation for a while
        return None


async def test_a_stop_releases_a_stubborn_load_and_the_batch_claimed_behind_it(tmp_path: Path) -> None:
    action = Stubborn()
    overrides = {"scheduler.batch_size": 5, "scheduler.grace_seconds": 0.3}
    async with opened(tmp_path, [Destination("warehouse", [action])], **overrides) as runtime:
        jobs = await ingest(runtime, "warehouse", "export", 12)
        stop = asyncio.Event()
        task = asyncio.create_task(run_scheduler(runtime, stop))
        await eventually(lambda: _executing(runtime, 10))  # the load's batch and the next one, claimed
        stop.set()
        await asyncio.wait_for(task, 5)  # it does not wait for the stubborn load
        found = await statuses(runtime, ids=[j.id for j in jobs])
        assert action.started == [5]  # the batch claimed behind it was released, not loaded
        assert Status.EXECUTING not in found.values()
        assert sorted(found.values()) == sorted([Status.ACKNOWLEDGED] * 2 + [Status.AWAITING] * 10)


async def _executing(runtime: Any, count: int) -> bool:
    return list((await statuses(runtime)).values()).count(Status.EXECUTING) == count
