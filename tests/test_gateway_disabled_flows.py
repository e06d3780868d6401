"""The gateway's cache of the disabled flows: one store read per refresh interval however many
events are ingested meanwhile, the last set kept when a read fails, and no blind start."""

from __future__ import annotations

import asyncio

import pytest

from core.gateway.disabled import DisabledFlows
from core.testing import MemoryStore
from core.testing.data import utcnow
from hookspecs import DisabledFlow, StoreUnavailable


class Counting(MemoryStore):
    """A memory store counting its reads of the disabled flows; ``broken`` makes them fail."""

    reads = 0
    broken = False

    async def disabled_flows(self) -> list[DisabledFlow]:
        self.reads += 1
        if self.broken:
            raise OSError("connection reset")
        await asyncio.sleep(0)  # let the concurrent callers pile up on the one read
        return await super().disabled_flows()


async def test_one_read_serves_every_ingest_of_the_interval() -> None:
    store = Counting()
    await store.open()
    await store.disable_flow(DisabledFlow(flow="web-to-crm", who="ops", created_at=utcnow()))
    cache = DisabledFlows(store, refresh_seconds=3600)
    seen = await asyncio.gather(*(cache.names() for _ in range(100)))
    assert set(seen) == {frozenset({"web-to-crm"})} and store.reads == 1
    await store.enable_flow("web-to-crm")
    assert await cache.names() == frozenset({"web-to-crm"}) and store.reads == 1  # until the interval passed


async def test_a_failed_read_keeps_the_last_set_and_a_first_one_refuses() -> None:
    store = Counting()
    await store.open()
    await store.disable_flow(DisabledFlow(flow="web-to-crm", who="ops", created_at=utcnow()))
    store.broken = True
    with pytest.raises(StoreUnavailable, match="disabled flows"):
        await DisabledFlows(store, refresh_seconds=0).names()
    store.broken = False
    cache = DisabledFlows(store, refresh_seconds=0)  # every call reads again
    assert await cache.names() == frozenset({"web-to-crm"})
    store.broken = True
    assert await cache.names() == frozenset({"web-to-crm"}) and store.reads == 3
    store.broken = False
    await store.enable_flow("web-to-crm")
    assert await cache.names() == frozenset()


async def test_a_store_without_disabled_flows_disables_none() -> None:
    assert await DisabledFlows(object(), refresh_seconds=2).names() == frozenset()
