"""CRON strings (six fields with seconds, crontab's weekdays) and the cron loop's slots: each
slot's events go under the key ``cron:<source>/<trigger>@<slot>``, which ``extract`` sees, so
a slot fired twice (two gateways, a clock stepped back) is stored once. On the real SQLite store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.gateway import Gateway
from core.gateway.cron import _after_ticks, slot_key, tick
from core.timing import parse_interval
from hookspecs import CronTrigger, EventDraft, Flow, Source, Toolkit, WhereEvent, WhereJob
from tests.gateway_kit import eventually, opened, serving, shop

MONDAY = datetime(2026, 12, 7, 12, 0, 0, 500_000, tzinfo=UTC)


def _next(expression: str, after: datetime = MONDAY, count: int = 3) -> list[datetime]:
    ticks, interval = [after], parse_interval(expression)
    for _ in range(count):
        ticks.append(interval.next_after(ticks[-1]))
    return ticks[1:]


def test_a_six_field_cron_string_has_seconds_first() -> None:
    assert _next("*/20 * * * * *") == [MONDAY.replace(second=s, microsecond=0) for s in (20, 40)] + [
        MONDAY.replace(minute=1, second=0, microsecond=0)]
    assert _next("0 30 2 * * *", count=1) == _next("30 2 * * *", count=1)


@pytest.mark.parametrize(("weekdays", "days"), [
    ("0", {"Sunday"}), ("7", {"Sunday"}), ("1-5", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}),
    ("0,6", {"Saturday", "Sunday"}), ("*/2", {"Sunday", "Tuesday", "Thursday", "Saturday"}),
    ("fri-sun", {"Friday", "Saturday", "Sunday"}), ("5-7", {"Friday", "Saturday", "Sunday"}),
])
def test_weekdays_are_crontabs(weekdays: str, days: set[str]) -> None:
    assert {tick.strftime("%A") for tick in _next(f"0 0 * * {weekdays}", count=14)} == days
    assert {tick.strftime("%A") for tick in _next("@weekly", count=2)} == {"Sunday"}


@pytest.mark.parametrize("weekdays", ["8", "5-1", "*/0", "someday"])
def test_a_bad_weekday_is_refused_naming_the_forms(weekdays: str) -> None:
    with pytest.raises(ValueError, match="weekday"):
        parse_interval(f"0 0 * * {weekdays}")


def test_a_slot_key_names_the_trigger_and_the_slot_in_utc() -> None:
    slot = datetime(2026, 3, 29, 3, 30, tzinfo=UTC)
    assert slot_key("shop", "pull", slot) == "cron:shop/pull@2026-03-29T03:30:00Z"
    long = slot_key("s" * 200, "t" * 200, slot)
    assert len(long) <= 247 and long.endswith("@2026-03-29T03:30:00Z")


@pytest.mark.parametrize(("ran", "wanted"), [
    (0.02, 1),  # in time: the next slot
    (1.01, 1),  # overran one slot a little: it fires, late
    (3.5, 3),  # overran three: only the last fires, late (no burst)
])
def test_after_a_tick_the_next_slot_is_the_next_or_the_last_overrun(ran: float, wanted: int) -> None:
    fired = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    ran_until = fired + timedelta(seconds=ran)
    assert _after_ticks(parse_interval("* * * * * *"), fired, ran_until) == fired + timedelta(seconds=wanted)


async def test_a_slot_fired_twice_is_stored_once_and_extract_sees_its_key(tmp_path: Path) -> None:
    keys: list[str] = []

    async def pull(toolkit: Toolkit) -> Sequence[EventDraft]:
        keys.append(toolkit.idempotency_key)
        return [EventDraft(data={"n": len(keys)}, name="polled"), EventDraft(data={"n": -len(keys)}, name="polled")]

    trigger = CronTrigger("pull", "* * * * * *", pull)
    _, destinations, _ = shop()
    source = Source("poller", triggers=[trigger])
    flows = [Flow("polls", source="poller", actions=["sink.keep"])]
    slot = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    async with opened(tmp_path, [source], destinations, flows) as runtime:
        gateway = Gateway(runtime)
        toolkit = runtime.toolkit("poller", service="gateway")
        for _ in range(2):  # two gateways (or one whose clock went back) fire one slot
            await tick(gateway.ingestor, "poller", trigger, toolkit, slot)
        await tick(gateway.ingestor, "poller", trigger, toolkit, slot + timedelta(seconds=1))
        events = await runtime.store.find_events(WhereEvent(sources=["poller"]))
        jobs = await runtime.store.find_jobs(WhereJob())
    assert keys == [slot_key("poller", "pull", slot)] * 2 + [slot_key("poller", "pull", slot + timedelta(seconds=1))]
    assert sorted(e.data["n"] for e in events) == [-3, -1, 1, 3]  # the second firing stored nothing
    wanted = sorted(f"{key}#{i}" for key in set(keys) for i in (0, 1))
    assert sorted(job.idempotency_key or "" for job in jobs) == wanted


async def test_a_running_six_field_cron_trigger_fires_every_second(tmp_path: Path) -> None:
    async def pull(toolkit: Toolkit) -> Sequence[EventDraft]:
        return [EventDraft(data={"slot": toolkit.idempotency_key}, name="polled")]

    _, destinations, _ = shop()
    source = Source("poller", triggers=[CronTrigger("pull", "* * * * * *", pull)])
    async with opened(tmp_path, [source], destinations) as runtime, serving(runtime):

        async def two() -> bool:
            return len(await runtime.store.find_events(WhereEvent(sources=["poller"]))) >= 2

        await eventually(two)
        events = await runtime.store.find_events(WhereEvent(sources=["poller"]))
    slots = sorted(datetime.fromisoformat(e.data["slot"].rpartition("@")[2]) for e in events)
    assert len(set(slots)) == len(slots) and (slots[1] - slots[0]) == timedelta(seconds=1)
