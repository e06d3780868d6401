"""The idempotency half of the store suite: one stored event per source and key within the
key's window, duplicates answered with the original, a reused key refused whole, and
concurrent writers through several clients storing exactly one event."""

from __future__ import annotations

import asyncio
from datetime import datetime

from core.testing._base import AdapterPool, requires
from core.testing.data import Names, later, make_event, utcnow
from hookspecs import Capability, Duplicate, Event, IdempotencyKey, Queue, Store, WhereEvent


def keyed(names: Names, key: str, fingerprint: str = "f1", *, expires_at: datetime | None = None,
          source: str | None = None) -> Event:
    """An event of ``names.source`` (one job) under idempotency ``key``."""
    event = make_event(source=source or names.source, actions=[(names.destination, names.action)])
    event.idempotency = IdempotencyKey(key, fingerprint, expires_at or later(utcnow(), 86400))
    for job in event.jobs:
        job.idempotency_key = key
    return event


class StoreIdempotencyChecks:
    """Mixed into :class:`~core.testing.store.StoreSuite`."""

    async def stored(self, store: Store, source: str) -> list[str]:
        return [event.id for event in await store.find_events(WhereEvent(sources=[source]))]

    async def test_events_without_keys_have_no_duplicates(self, adapter: Store, names: Names) -> None:
        event = make_event(source=names.source, actions=[(names.destination, names.action)])
        assert await adapter.insert_queue(Queue(events=[event])) == []

    async def test_a_key_stores_one_event_and_a_retry_answers_the_original(
        self, adapter: Store, names: Names
    ) -> None:
        first, retry = keyed(names, "k1"), keyed(names, "k1")
        assert await adapter.insert_queue(Queue(events=[first])) == []
        assert await adapter.insert_queue(Queue(events=[retry])) == [Duplicate(retry.id, first.id, "k1", same=True)]
        assert await self.stored(adapter, names.source) == [first.id]
        assert await adapter.get_job(retry.jobs[0].id) is None, "the job of a duplicate was stored"
        job = await adapter.get_job(first.jobs[0].id)
        assert job is not None and job.idempotency_key == "k1"

    async def test_a_reused_key_with_another_fingerprint_stores_nothing_of_the_queue(
        self, adapter: Store, names: Names
    ) -> None:
        first = keyed(names, "k1")
        await adapter.insert_queue(Queue(events=[first]))
        reused, fresh, plain = keyed(names, "k1", "other"), keyed(names, "k2"), make_event(source=names.source)
        duplicates = await adapter.insert_queue(Queue(events=[fresh, reused, plain]))
        assert duplicates == [Duplicate(reused.id, first.id, "k1", same=False)]
        assert await self.stored(adapter, names.source) == [first.id], "a refused queue stored events"
        later_fresh = keyed(names, "k2")
        assert await adapter.insert_queue(Queue(events=[later_fresh])) == [], "a refused queue kept a key"

    async def test_keys_are_per_source(self, adapter: Store, names: Names) -> None:
        one, two = keyed(names, "k1"), keyed(names, "k1", source=names.source + "_b")
        assert await adapter.insert_queue(Queue(events=[one, two])) == []
        assert await adapter.get_event(two.id) is not None

    async def test_a_key_twice_in_one_queue_stores_the_first(self, adapter: Store, names: Names) -> None:
        first, again = keyed(names, "k1"), keyed(names, "k1")
        assert await adapter.insert_queue(Queue(events=[first, again])) == [
            Duplicate(again.id, first.id, "k1", same=True)]
        assert await self.stored(adapter, names.source) == [first.id]

    async def test_a_key_whose_window_ended_is_free_again(self, adapter: Store, names: Names) -> None:
        old = keyed(names, "k1", expires_at=later(utcnow(), -1))
        await adapter.insert_queue(Queue(events=[old]))
        new = keyed(names, "k1")
        assert await adapter.insert_queue(Queue(events=[new])) == []
        retry = keyed(names, "k1")
        assert await adapter.insert_queue(Queue(events=[retry])) == [Duplicate(retry.id, new.id, "k1", same=True)]

    @requires(Capability.PURGE)
    async def test_purge_keeps_keys_within_their_window(self, adapter: Store, names: Names) -> None:
        live, ended = keyed(names, "live"), keyed(names, "ended", expires_at=later(utcnow(), -1))
        await adapter.insert_queue(Queue(events=[live, ended]))
        await adapter.purge(before=later(utcnow(), -86400))
        assert await adapter.insert_queue(Queue(events=[keyed(names, "live")])), "purge freed a live key"
        assert await adapter.insert_queue(Queue(events=[keyed(names, "ended")])) == []

    async def test_concurrent_writers_store_one_event_per_key(self, adapters: AdapterPool, names: Names) -> None:
        stores = [await adapters.open(), await adapters.open()]
        events = [keyed(names, "k1") for _ in range(60)]
        answers = await asyncio.gather(*(
            stores[i % 2].insert_queue(Queue(events=[event])) for i, event in enumerate(events)))
        [stored] = await self.stored(stores[0], names.source)
        assert sum(not answer for answer in answers) == 1, "not exactly one writer stored its event"
        originals = {duplicate.original_id for answer in answers for duplicate in answer}
        assert originals == {stored}
