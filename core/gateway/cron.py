"""Cron triggers: call the trigger's ``extract`` on its schedule and ingest what it returns.

The schedule is ``@every <duration>`` or a CRON string (:mod:`core.timing`). ``@every`` runs on
the monotonic clock: a step of the wall clock changes nothing. A CRON string names *slots* of
the wall clock: a slot fires once the local wall clock has reached it (the loop sleeps at most
:data:`CHUNK` seconds at a time and reads the clock again, so a clock stepped forward fires
promptly and one stepped back fires nothing twice); the next slot is the one after the slot
fired, not after "now". Slots that passed while the loop waited (a forward step jumped over
them, or the event loop was blocked) fire at once, in order, at most :data:`CATCH_UP` of them
(the rest skipped). Of the slots that passed while a tick ran (by the monotonic clock: it ran
long), only the last fires, late; the others are skipped, not run in a burst.

Each slot's events carry the idempotency key ``cron:<source>/<trigger>@<slot in UTC>`` (``#<i>``
appended for the i-th of several drafts; a draft's own key wins), which the store deduplicates:
when gateways whose clocks differ by seconds both fire a slot (while the trigger's lease passes
from one to the other), the slot is stored once. ``extract`` sees that key as
``toolkit.idempotency_key``.

An ``extract`` that raises is logged and the next slot comes as usual; so is a store failure
(the drafts of that tick are lost: an extractor that keeps a cursor should advance it only on
success). Before storing, a tick checks that its node still holds the trigger's lease (fencing):
a node that froze past the lease and woke up drops that tick's events.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime, timedelta

from core.gateway.drafts import checked
from core.gateway.http import MAX_KEY_LENGTH
from core.gateway.ingest import Ingestor
from core.gateway.singleton import still_held
from core.timing import Interval, parse_interval
from hookspecs import CronTrigger, Toolkit

log = logging.getLogger("core.gateway")

#: The longest sleep (seconds) before the wall clock is read again while waiting for a slot.
CHUNK = 1.0
#: The most slots fired at once after a forward step; older ones are skipped (and logged).
CATCH_UP = 60


def slot_key(source: str, trigger: str, slot: datetime) -> str:
    """The idempotency key of a CRON slot's events (``cron:shop/pull@2026-03-29T01:30:00Z``)."""
    moment = slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    key = f"cron:{source}/{trigger}@{moment}"
    if len(key) + 8 > MAX_KEY_LENGTH:  # room for '#<index>'; long names are hashed
        key = f"cron:{hashlib.sha256(f'{source}/{trigger}'.encode()).hexdigest()}@{moment}"
    return key


async def tick(ingestor: Ingestor, source: str, trigger: CronTrigger, toolkit: Toolkit,
               slot: datetime | None = None) -> None:
    """One run: extract, then ingest (under the slot's key, if a CRON slot); failures are logged,
    never raised."""
    where = f"source {source!r}, cron trigger {trigger.name!r}"
    key = None if slot is None else slot_key(source, trigger.name, slot)
    try:
        drafts = checked(await trigger.extract(toolkit if key is None else toolkit.evolve(idempotency_key=key)),
                         where)
    except Exception:
        log.exception("%s: extract failed; trying again at the next tick", where)
        return
    if not drafts:
        return
    try:
        if not await still_held():
            log.warning("%s: this node lost the trigger's lease during the tick; its %d event(s) are dropped "
                        "(the new holder runs the trigger)", where, len(drafts))
            return
        done = await ingestor.ingest(source, trigger.name, drafts, idempotency_key=key, fingerprint=key)
    except Exception as exc:  # noqa: BLE001 - the next tick comes anyway
        log.error("%s: could not store %d event(s): %s", where, len(drafts), exc)
        return
    log.debug("%s: stored %d event(s), %d fired already by another node", where, len(done.stored),
              len(done.duplicates))


async def run_cron(ingestor: Ingestor, source: str, trigger: CronTrigger, toolkit: Toolkit) -> None:
    """Tick forever (until cancelled) on the trigger's schedule."""
    interval = parse_interval(trigger.interval)
    if interval.every is not None:
        await _every(interval.every, ingestor, source, trigger, toolkit)
        return
    where = f"source {source!r}, cron trigger {trigger.name!r}"
    loop = asyncio.get_running_loop()
    slot = interval.next_after(datetime.now(UTC))
    while True:
        await _reach(slot)
        due = _passed(interval, slot)  # more than one: the clock jumped over slots while we waited
        if len(due) == CATCH_UP and interval.next_after(due[-1]) <= datetime.now(UTC):
            log.warning("%s: the clock jumped ahead past more than %d slots; firing the first %d, skipping the rest",
                        where, CATCH_UP, CATCH_UP)
        started, begun = datetime.now(UTC), loop.time()
        for each in due:
            await tick(ingestor, source, trigger, toolkit, each)
        slot = _after_ticks(interval, due[-1], started + timedelta(seconds=loop.time() - begun))


def _after_ticks(interval: Interval, fired: datetime, ran_until: datetime) -> datetime:
    """The slot to wait for after the ticks up to ``fired``, which ran until ``ran_until`` (the
    wall clock then, had it not stepped: when they began plus their monotonic time). Of the
    slots they overran, only the last is kept, to fire late (no burst); slots the clock jumped
    over while they ran are after ``ran_until``, and fire as slots passed while waiting."""
    slot = interval.next_after(fired)
    while slot <= ran_until and (after := interval.next_after(slot)) <= ran_until:
        slot = after
    return slot


async def _reach(slot: datetime) -> None:
    """Return once the wall clock has reached ``slot``, reading it at least every :data:`CHUNK` s."""
    while (left := (slot - datetime.now(UTC)).total_seconds()) > 0:
        await asyncio.sleep(min(left, CHUNK))


def _passed(interval: Interval, slot: datetime) -> list[datetime]:
    """``slot`` and the slots after it up to now, at most :data:`CATCH_UP` in all."""
    now, slots = datetime.now(UTC), [slot]
    while len(slots) < CATCH_UP and (after := interval.next_after(slots[-1])) <= now:
        slots.append(after)
    return slots


async def _every(period: float, ingestor: Ingestor, source: str, trigger: CronTrigger, toolkit: Toolkit) -> None:
    """``@every``: a tick each ``period`` seconds of the monotonic clock, missed ones skipped."""
    loop = asyncio.get_running_loop()
    due = loop.time() + period
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))
        await tick(ingestor, source, trigger, toolkit)
        now = loop.time()
        due += period
        if due <= now:
            due = now + period
