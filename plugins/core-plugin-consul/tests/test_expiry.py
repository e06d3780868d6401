"""What the server's clock decides: a lease kept alive by renew outlives its TTL, and a node
that stops heartbeating drops out of the registry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from core.testing import make_node

from core_plugin_consul.supervisor import ConsulSupervisor

TTL = 10  # the shortest TTL the server grants


@pytest.fixture
async def supervisor(consul_url: str) -> AsyncIterator[ConsulSupervisor]:
    sup = ConsulSupervisor(consul_url, node_ttl=TTL)
    await sup.open()
    yield sup
    await sup.close()


async def test_renewing_keeps_a_lease_past_its_ttl(supervisor: ConsulSupervisor, consul_url: str) -> None:
    other = ConsulSupervisor(consul_url)
    await other.open()
    try:
        lease = await supervisor.acquire("renewed", owner="alpha", ttl=TTL)
        assert lease is not None
        for _ in range(6):  # three TTLs in all, renewed at half the TTL
            await asyncio.sleep(TTL / 2)
            renewed = await supervisor.renew(lease, ttl=TTL)
            assert renewed is not None and renewed.token == lease.token
            assert await other.acquire("renewed", owner="beta", ttl=TTL) is None
        assert await other.is_current(lease)
    finally:
        await other.close()


async def test_a_node_that_stops_heartbeating_drops_out(supervisor: ConsulSupervisor) -> None:
    silent, alive = make_node("gateway"), make_node("scheduler")
    await supervisor.register(silent)
    await supervisor.register(alive)
    assert {silent.id, alive.id} <= {n.id for n in await supervisor.nodes()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 4 * TTL + 10
    while silent.id in {n.id for n in await supervisor.nodes()}:
        assert loop.time() < deadline, f"a node silent for {4 * TTL + 10}s is still listed"
        await asyncio.sleep(TTL / 4)
        await supervisor.register(alive)  # the live node keeps heartbeating
    assert alive.id in {n.id for n in await supervisor.nodes()}
