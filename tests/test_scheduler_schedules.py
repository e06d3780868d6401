"""Schedules (precedence, intervals of the loops), leases of scheduled actions, recovery."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.scheduler import recover
from core.scheduler.loop import ActionLoop, lease_key
from core.scheduler.runner import Runner
from core.scheduler.service import RECOVERED
from hookspecs import DEFAULT_SCHEDULE, Action, Claim, Destination, Queue, Schedule, Status, Toolkit
from tests.scheduler_kit import all_in, ingest, opened


class Noop(Action):
    def __init__(self, name: str, schedule: Schedule | None = None) -> None:
        self.name = name  # type: ignore[misc]
        self.schedule = schedule
        self.loads = 0

    async def load(self, toolkit: Toolkit, queue: Queue) -> None:
        self.loads += 1


async def test_schedule_precedence_action_then_destination_then_default(tmp_path: Path) -> None:
    own = Noop("own", Schedule(interval="@every 5m", max_retries=3))
    inherits = Noop("inherits")
    plain = Noop("plain")
    destinations = [
        Destination("crm", [own, inherits], schedule=Schedule(realtime=True, interval="@every 2m", max_retries=9)),
        Destination("dw", [plain]),
    ]
    async with opened(tmp_path, destinations, **{"scheduler.poll_seconds": 0.5}) as runtime:
        runner = Runner(runtime, load_timeout=5)
        stopping = asyncio.Event()

        def loop(destination: str, action: str) -> ActionLoop:
            dest, act = runtime.pipeline.action(f"{destination}.{action}")
            return ActionLoop(runtime, runner, dest, act, stopping, batch_size=10, lease_seconds=30, poll_seconds=0.5)

        assert runtime.pipeline.schedule_of("crm", "own") == own.schedule
        assert runtime.pipeline.schedule_of("crm", "inherits").max_retries == 9
        assert runtime.pipeline.schedule_of("dw", "plain") == DEFAULT_SCHEDULE
        own_loop, inherits_loop, plain_loop = loop("crm", "own"), loop("crm", "inherits"), loop("dw", "plain")
        assert (own_loop.realtime, own_loop.interval.every) == (False, 300)
        assert (inherits_loop.realtime, inherits_loop.interval.every) == (True, 0.5)  # realtime: polled
        assert (plain_loop.realtime, plain_loop.interval.every) == (False, 3600)


async def test_a_scheduled_action_is_loaded_by_the_lease_holder_only(tmp_path: Path) -> None:
    action = Noop("sync", Schedule(interval="@every 1h"))
    async with opened(tmp_path, [Destination("dw", [action])]) as runtime:
        assert runtime.supervisor is not None
        jobs = await ingest(runtime, "dw", "sync", 3)
        dest, act = runtime.pipeline.action("dw.sync")
        loop = ActionLoop(
            runtime, Runner(runtime, load_timeout=5), dest, act, asyncio.Event(),
            batch_size=10, lease_seconds=30, poll_seconds=1,
        )
        other = await runtime.supervisor.acquire(lease_key("dw", "sync"), owner="another-node", ttl=30)
        assert other is not None
        assert await loop.tick(datetime.now(UTC)) == 0
        assert action.loads == 0 and await all_in(runtime, [j.id for j in jobs], Status.ACKNOWLEDGED)

        await runtime.supervisor.release(other)
        assert await loop.tick(datetime.now(UTC)) == 3
        assert await all_in(runtime, [j.id for j in jobs], Status.SUCCEEDED)
        # the pass released its lease: another node may take the next tick
        taken = await runtime.supervisor.acquire(lease_key("dw", "sync"), owner="another-node", ttl=30)
        assert taken is not None


async def test_cron_ticks_follow_the_cron_times(tmp_path: Path) -> None:
    async with opened(tmp_path, [Destination("dw", [Noop("nightly", Schedule(interval="30 2 * * *"))])]) as runtime:
        dest, act = runtime.pipeline.action("dw.nightly")
        loop = ActionLoop(
            runtime, Runner(runtime, load_timeout=5), dest, act, asyncio.Event(),
            batch_size=10, lease_seconds=30, poll_seconds=1,
        )
        at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        assert loop.interval.next_after(at) == datetime(2026, 3, 2, 2, 30, tzinfo=UTC)


async def test_recovery_counts_the_lost_load_and_discards_when_no_retry_is_left(tmp_path: Path) -> None:
    once = Noop("once", Schedule(interval="@every 1h", max_retries=0))
    twice = Noop("twice", Schedule(interval="@every 1h", max_retries=1))
    async with opened(tmp_path, [Destination("dw", [once, twice])]) as runtime:
        (a,) = await ingest(runtime, "dw", "once")
        (b,) = await ingest(runtime, "dw", "twice")
        # a scheduler that crashed: claims with a lease already over, and never records
        past = datetime.now(UTC) - timedelta(minutes=5)
        dead = Claim(owner="crashed-node", lease_seconds=1)
        for action in ("once", "twice"):
            assert await runtime.store.claim(dead, destination="dw", action=action, limit=10, now=past)
        assert len(await recover(runtime)) == 2
        lost_a, lost_b = await runtime.store.get_job(a.id), await runtime.store.get_job(b.id)
        assert lost_a is not None and lost_b is not None
        assert [(t.state_after, t.attempt) for t in lost_a.transitions[1:]] == [
            (Status.EXECUTING, 1), (Status.FAILED, 1), (Status.DISCARDED, 1),
        ]
        assert lost_a.transitions[-1].error == RECOVERED
        assert (lost_b.status, lost_b.attempt) == (Status.FAILED, 1)
        assert await recover(runtime) == []
