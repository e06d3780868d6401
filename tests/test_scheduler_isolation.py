"""Poison isolation, in process on the in-memory store: a batch action that raises on one event
costs that event alone; the good events batched with it succeed at their retry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hookspecs import Action, Destination, Queue, Schedule, Status, Toolkit
from tests.scheduler_kit import all_in, eventually, ingest, opened, scheduling


class PoisonBatch(Action):
    """Raises for any queue holding the job of event ``n == 3``; records every queue's size."""

    name = "export"

    def __init__(self, max_retries: int) -> None:
        self.schedule = Schedule(interval="@every 1s", max_retries=max_retries)
        self.sizes: list[int] = []

    async def load(self, toolkit: Toolkit, queue: Queue) -> Any:
        self.sizes.append(len(queue.jobs))
        if any(job.data["n"] == 3 for job in queue.jobs):
            raise ValueError("poison event")
        return None


@pytest.mark.parametrize("max_retries", [0, 2])
async def test_a_poison_event_is_discarded_alone_and_its_batch_succeeds(tmp_path: Path, max_retries: int) -> None:
    action = PoisonBatch(max_retries)
    async with opened(tmp_path, [Destination("warehouse", [action])]) as runtime:
        jobs = await ingest(runtime, "warehouse", "export", 10)
        poison, good = jobs[3], [j for j in jobs if j is not jobs[3]]
        async with scheduling(runtime):
            await eventually(lambda: all_in(runtime, [j.id for j in good], Status.SUCCEEDED))
            await eventually(lambda: all_in(runtime, [poison.id], Status.DISCARDED))
        history = await runtime.store.get_job(poison.id)
        assert history is not None
        attempts = [t.attempt for t in history.transitions if t.state_after == Status.EXECUTING]
        # The first attempt is shared; then it is loaded alone until its retries run out (with
        # max_retries = 0 the shared failure cannot count as its last: one attempt alone).
        assert attempts == list(range(1, max(max_retries, 1) + 2))
        assert action.sizes[0] == 10 and all(size == 1 for size in action.sizes[1:])
        for good_job in good:
            found = await runtime.store.get_job(good_job.id)
            assert found is not None and found.attempt == 2
