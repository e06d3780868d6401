"""A scheduler whose claim lease ran out, and whose job was recovered and claimed again by
another, finishes its load: the store refuses its stale outcome, and the scheduler logs it,
counts it and goes on (issue 20)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from core.observability import metrics
from core.scheduler.runner import Runner
from core.testing.data import utcnow
from hookspecs import Action, Claim, Destination, Queue, Schedule, Status, Toolkit
from tests.scheduler_kit import opened, write_jobs


class Gate(Action):
    """A load that waits until the test opens the gate, then succeeds."""

    name = "gated"
    schedule = Schedule(interval="@every 1h")

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    async def load(self, toolkit: Toolkit, queue: Queue) -> None:
        self.started.set()
        await self.gate.wait()


async def test_a_stale_outcome_is_refused_logged_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    action = Gate()
    destination = Destination("dw", [action])
    async with opened(tmp_path, [destination]) as runtime:
        store = runtime.store
        [job] = await write_jobs(store, "dw", "gated")
        now = utcnow()
        [mine] = await store.claim(Claim("frozen", 5), destination="dw", action="gated", limit=1, now=now)
        load = asyncio.create_task(Runner(runtime, load_timeout=10).run(destination, action, [mine]))
        await asyncio.wait_for(action.started.wait(), 10)
        assert [j.id for j in await store.recover(now=now + timedelta(seconds=6))] == [job.id]
        [theirs] = await store.claim(Claim("other", 300), destination="dw", action="gated", limit=1,
                                     now=now + timedelta(seconds=7))
        before = metrics.TRANSITIONS_REFUSED._value.get()
        with caplog.at_level(logging.WARNING, "core.scheduler"):
            action.gate.set()
            assert await asyncio.wait_for(load, 10) == [], "a refused transition was reported as stored"
        assert metrics.TRANSITIONS_REFUSED._value.get() == before + 1
        assert any("refused 1 transition" in r.getMessage() and "stale" in r.getMessage() for r in caplog.records)
        got = await store.get_job(job.id)
        assert got is not None and (got.status, got.attempt) == (Status.EXECUTING, theirs.attempt)
        assert Status.SUCCEEDED not in [t.state_after for t in got.transitions], "the stale outcome overwrote"

