"""Concurrency limits and ordering keys as declared: at most N jobs loading at once, realtime and
scheduled; the ConfigErrors naming the action; the start refused when the store cannot enforce them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError, CoreError
from core.scheduler import run_scheduler
from hookspecs import Action, Destination, Queue, Schedule, Status, Toolkit
from tests.scheduler_kit import eventually, ingest, opened, scheduling, statuses


class Slow(Action):
    """Records how many of its jobs are loading at once."""

    def __init__(self, name: str, schedule: Schedule, **options: Any) -> None:
        self.name = name  # type: ignore[misc]
        self.schedule = schedule
        for key, value in options.items():
            setattr(self, key, value)
        self.running = self.most = 0

    async def load(self, toolkit: Toolkit, queue: Queue) -> None:
        self.running += len(queue)
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.05)
        self.running -= len(queue)


async def test_realtime_and_scheduled_loads_never_exceed_the_concurrency(tmp_path: Path) -> None:
    realtime = Slow("notify", Schedule(realtime=True, interval="@every 1s"), concurrency=2)
    scheduled = Slow("sync", Schedule(interval="@every 1s"))
    async with opened(tmp_path, [Destination("chat", [realtime, scheduled], concurrency=3)],
                      **{"scheduler.batch_size": 10}) as runtime:
        async with scheduling(runtime):
            await asyncio.sleep(0.2)  # let the consumer join before the first publish
            published = await ingest(runtime, "chat", "notify", 12, publish=True)
            stored = await ingest(runtime, "chat", "sync", 12)

            async def all_succeeded() -> bool:
                left = await statuses(runtime, actions_in=["notify", "sync"])
                return len(left) == 24 and all(status is Status.SUCCEEDED for status in left.values())

            await eventually(all_succeeded)
        assert len(published) == len(stored) == 12
        assert realtime.most == 2, f"the realtime action's limit of 2 saw {realtime.most} jobs at once"
        assert scheduled.most == 3, f"the destination's limit of 3 saw {scheduled.most} jobs at once"


@pytest.mark.parametrize(("options", "key"), [
    ({"concurrency": 0}, "concurrency"), ({"concurrency": True}, "concurrency"), ({"concurrency": "2"}, "concurrency"),
    ({"ordering_key": "user_id"}, "ordering_key"), ({"ordering_key": "context..id"}, "ordering_key"),
    ({"ordering_key": "data."}, "ordering_key"), ({"ordering_key": "context"}, "ordering_key"),
])
async def test_a_bad_control_is_a_config_error_naming_the_action_at_load(
    tmp_path: Path, options: dict[str, Any], key: str,
) -> None:
    action = Slow("sync", Schedule(), **options)
    with pytest.raises(ConfigError) as raised:
        async with opened(tmp_path, [Destination("crm", [action])]):
            pass
    assert raised.value.source == "action crm.sync" and raised.value.key == key
    assert raised.value.value == options[key]
    assert "context." in str(raised.value) or ">= 1" in str(raised.value), "the error says nothing of what is allowed"


@pytest.mark.parametrize(("options", "capability"), [
    ({"concurrency": 2}, "concurrency"), ({"ordering_key": "context.user_id"}, "ordering"),
])
async def test_a_control_the_store_does_not_declare_refuses_the_start(
    tmp_path: Path, options: dict[str, Any], capability: str,
) -> None:
    async with opened(tmp_path, [Destination("crm", [Slow("sync", Schedule(), **options)])]) as runtime:
        runtime.store_capabilities = frozenset(runtime.store_capabilities - {capability})
        with pytest.raises(CoreError, match=f"'{capability}'") as raised:
            await run_scheduler(runtime, asyncio.Event())
    assert "crm.sync" in str(raised.value) and "could not enforce" in str(raised.value)
    assert raised.value.hint and "remove the" in raised.value.hint


def test_a_destination_concurrency_applies_to_its_actions_and_an_action_one_wins() -> None:
    crm = Destination("crm", [Slow("a", Schedule()), Slow("b", Schedule(), concurrency=1)], concurrency=4)
    assert (crm.concurrency_of("a"), crm.concurrency_of("b")) == (4, 1)
