"""Helpers of the scheduler tests: a runtime on the kit's in-memory store (and the in-memory
broker), jobs written the way the gateway writes them, a running scheduler, and waiting with a
deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.config import load_settings
from core.ready_jobs import encode
from core.runtime import Runtime
from core.scheduler import run_scheduler
from hookspecs import JOBS_TOPIC, Destination, Event, Job, Page, Queue, Status, Store, WhereJob, new_id
from tests import scheduler_app


def settings_for(tmp_path: Path, **overrides: Any) -> Any:
    """Settings on the in-memory store (one database per test: one event loop), a private memory
    broker and local supervisor."""
    suffix = new_id()[-8:]
    values = {
        "store": "memory://",
        "pubsub": f"memory://sched-{suffix}",
        "supervisor": f"local://sched-{suffix}",
        "wanderer": "",
        "app": "tests.scheduler_app",
        "scheduler.poll_seconds": 0.2,
        "scheduler.lease_seconds": 30,
        "scheduler.load_timeout": 10,
        "scheduler.grace_seconds": 5,
    }
    values.update(overrides)
    return load_settings(cwd=tmp_path, environ={}, overrides=values)


@contextlib.asynccontextmanager
async def opened(tmp_path: Path, destinations: Sequence[Destination], **overrides: Any) -> AsyncIterator[Runtime]:
    """An opened runtime whose pipeline is ``destinations``."""
    scheduler_app.DESTINATIONS[:] = destinations
    runtime = await Runtime.open(settings_for(tmp_path, **overrides), services=["scheduler"], no_plugins=True)
    try:
        yield runtime
    finally:
        await runtime.close()


@contextlib.asynccontextmanager
async def scheduling(runtime: Runtime) -> AsyncIterator[asyncio.Task[None]]:
    """Run the scheduler in a task for the block; stop it (and re-raise its error) after."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_scheduler(runtime, stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def write_jobs(store: Store, destination: str, action: str, count: int = 1) -> list[Job]:
    """Store ``count`` events with one acknowledged job each, as the gateway does."""
    now = datetime.now(UTC)
    events = []
    for n in range(count):
        event_id = new_id()
        job = Job(id=new_id(), destination=destination, action=action, event_id=event_id,
                  context={"n": n}, data={"n": n}, created_at=now)
        events.append(Event(id=event_id, source="test", name="thing", context={"n": n}, data={"n": n},
                            received_at=now, jobs=[job]))
    await store.insert_queue(Queue(events=events))
    return [job for event in events for job in event.jobs]


async def ingest(runtime: Runtime, destination: str, action: str, count: int = 1, *,
                 publish: bool = False) -> list[Job]:
    """:func:`write_jobs` on the runtime's store, then announce them on its broker if ``publish``."""
    jobs = await write_jobs(runtime.store, destination, action, count)
    if publish:
        assert runtime.pubsub is not None
        await runtime.pubsub.publish(JOBS_TOPIC, encode(jobs))
    return jobs


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail with its last value at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(every)


async def statuses(runtime: Runtime, **where: Any) -> dict[str, Status]:
    """Current status of every job matching ``where`` (WhereJob fields), by id."""
    jobs = await runtime.store.find_jobs(WhereJob(page=Page(limit=100_000), **where))
    return {job.id: job.status for job in jobs}


async def all_in(runtime: Runtime, ids: Sequence[str], status: Status) -> bool:
    found = await statuses(runtime, ids=list(ids))
    return len(found) == len(ids) and all(s == status for s in found.values())
