"""Rate limits as declared: the forms accepted, the errors naming the action, the store gate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError, CoreError
from core.scheduler.ratelimit import gate_of
from core.testing import MemoryStore
from core.timing import RateLimit, parse_rate, take_tokens
from hookspecs import Action, Capability, Destination, Queue, Schedule, Status, Toolkit
from tests.scheduler_kit import eventually, ingest, opened, scheduling, statuses

#: The capabilities of a store keeping token buckets.
BUCKETS = frozenset({Capability.RATE_LIMITS})


class Send(Action):
    name = "send"


class Recorder(Action):
    """Records the jobs it loads."""

    def __init__(self, name: str, schedule: Schedule, **limits: Any) -> None:
        self.name = name  # type: ignore[misc]
        self.schedule = schedule
        self.rate_limit, self.rate_burst = limits["rate_limit"], limits["rate_burst"]
        self.loaded: list[str] = []

    async def load(self, toolkit: Toolkit, queue: Queue) -> None:
        self.loaded += [job.id for job in queue.jobs]


def destination(**limits: Any) -> Destination:
    action = Send()
    for key, value in limits.items():
        setattr(action, key, value)
    return Destination("crm", actions=[action])


@pytest.mark.parametrize(("text", "rate", "burst"), [
    ("10/s", 10.0, 10), ("6000/min", 100.0, 100), ("30/h", 30 / 3600, 1), (" 2.5 / second ", 2.5, 2),
])
def test_rates_are_parsed_with_a_burst_of_one_second(text: str, rate: float, burst: int) -> None:
    assert parse_rate(text) == RateLimit(rate, burst)


def test_a_bucket_refills_at_its_rate_and_never_past_its_burst() -> None:
    start, limit = datetime(2026, 1, 1, tzinfo=UTC), RateLimit(4.0, 2)
    assert take_tokens(0.0, start, 5, limit, start + timedelta(seconds=0.5)) == (2, 0.0)
    assert take_tokens(0.0, start, 5, limit, start + timedelta(seconds=0.2)) == (0, pytest.approx(0.8))
    assert take_tokens(1.0, start, 5, limit, start - timedelta(seconds=9)) == (1, 0.0), "a clock going back refilled"


@pytest.mark.parametrize(("limits", "key"), [
    ({"rate_limit": "fast"}, "rate_limit"), ({"rate_limit": "10/day"}, "rate_limit"),
    ({"rate_limit": "0/s"}, "rate_limit"), ({"rate_limit": "10/s", "rate_burst": 0}, "rate_burst"),
    ({"rate_limit": "10/s", "rate_burst": 2.5}, "rate_burst"),
])
def test_a_bad_limit_is_a_config_error_naming_the_action(limits: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        gate_of(MemoryStore(), destination(**limits), "send", BUCKETS)
    assert raised.value.source == "action crm.send" and raised.value.key == key
    assert '"100/s"' in str(raised.value) or ">= 1" in str(raised.value)


def test_a_destination_limit_applies_to_its_actions_and_an_action_limit_wins() -> None:
    crm = Destination("crm", actions=[Send()], rate_limit="5/s", rate_burst=3)
    gate = gate_of(MemoryStore(), crm, "send", BUCKETS)
    assert gate is not None and gate.key == "crm.send" and gate.limit == RateLimit(5.0, 3)
    gate = gate_of(MemoryStore(), destination(rate_limit="1/min"), "send", BUCKETS)
    assert gate is not None and gate.limit == RateLimit(1 / 60, 1)
    assert gate_of(MemoryStore(), destination(), "send", BUCKETS) is None


def test_a_store_without_token_buckets_refuses_a_limit_at_start() -> None:
    """The store's declared capabilities decide, not the methods it happens to have."""
    with pytest.raises(CoreError, match="rate_limits") as raised:
        gate_of(MemoryStore(), destination(rate_limit="10/s"), "send", {Capability.ORDERING})
    assert "crm.send" in str(raised.value)


async def test_realtime_and_scheduled_claims_take_no_more_than_the_bucket_grants(tmp_path: Path) -> None:
    """A bucket of 3 that refills once an hour: of 5 published and 5 scheduled jobs, 3 of each
    are loaded (each action has its bucket) and the others wait for tokens, not lost."""
    realtime = Recorder("notify", Schedule(realtime=True, interval="@every 1s"), rate_limit="1/h", rate_burst=3)
    scheduled = Recorder("sync", Schedule(interval="@every 1s"), rate_limit="1/h", rate_burst=3)
    async with opened(tmp_path, [Destination("chat", [realtime, scheduled])],
                      **{"scheduler.poll_seconds": 3600}) as runtime:
        async with scheduling(runtime):
            await asyncio.sleep(0.2)  # let the consumer join before the first publish
            published = await ingest(runtime, "chat", "notify", 5, publish=True)
            stored = await ingest(runtime, "chat", "sync", 5)

            async def six_succeeded() -> bool:
                left = await statuses(runtime, actions_in=["notify", "sync"])
                return sum(status is Status.SUCCEEDED for status in left.values()) == 6

            await eventually(six_succeeded)
            left = await statuses(runtime, actions_in=["notify", "sync"])
        assert sorted(left) == sorted(job.id for job in [*published, *stored]), "a job waiting for tokens was lost"
        assert len(realtime.loaded) == len(scheduled.loaded) == 3, "a claim took more than the bucket held"
