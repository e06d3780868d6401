"""The PostgreSQL supervisor against a real server: leases expire, tokens fence, nodes list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from hookspecs import Node

from core_plugin_postgres.supervisor import PostgresSupervisor, SupervisorUnavailable


@pytest.fixture
async def supervisor(pg_url: str) -> AsyncIterator[PostgresSupervisor]:
    sup = PostgresSupervisor(pg_url, node_ttl=5)
    await sup.open()
    yield sup
    await sup.close()


async def wait_until_expired(sup: PostgresSupervisor, key: str, owner: str) -> None:
    """Poll (with a deadline) until ``owner`` can take ``key``."""
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        if await sup.acquire(key, owner=owner, ttl=30) is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} never expired")


async def test_one_holder_at_a_time(supervisor: PostgresSupervisor) -> None:
    first = await supervisor.acquire("cron:orders", owner="a", ttl=30)
    assert first is not None and first.owner == "a"
    assert await supervisor.acquire("cron:orders", owner="b", ttl=30) is None
    assert await supervisor.is_current(first)


async def test_concurrent_acquirers_get_one_lease(pg_url: str) -> None:
    sups = [PostgresSupervisor(pg_url) for _ in range(4)]
    for sup in sups:
        await sup.open()
    try:
        got = await asyncio.gather(*(s.acquire("k", owner=f"n{i}", ttl=30) for i, s in enumerate(sups)))
        assert sum(lease is not None for lease in got) == 1
    finally:
        for sup in sups:
            await sup.close()


async def test_crashed_holder_lease_expires_and_fences_the_frozen_holder(
    supervisor: PostgresSupervisor,
) -> None:
    frozen = await supervisor.acquire("cdc:shop", owner="a", ttl=0.2)
    assert frozen is not None
    await wait_until_expired(supervisor, "cdc:shop", "b")
    taken = await supervisor.acquire("cdc:shop", owner="c", ttl=30)
    assert taken is None  # b holds it now
    assert not await supervisor.is_current(frozen)
    assert await supervisor.renew(frozen, ttl=30) is None


async def test_tokens_increase_across_release(supervisor: PostgresSupervisor) -> None:
    tokens = []
    for owner in ("a", "b", "a"):
        lease = await supervisor.acquire("migrate", owner=owner, ttl=30)
        assert lease is not None
        tokens.append(lease.token)
        await supervisor.release(lease)
        assert not await supervisor.is_current(lease)
    assert tokens == sorted(tokens) and len(set(tokens)) == 3


async def test_renew_extends(supervisor: PostgresSupervisor) -> None:
    lease = await supervisor.acquire("k", owner="a", ttl=1)
    assert lease is not None
    renewed = await supervisor.renew(lease, ttl=60)
    assert renewed is not None and renewed.token == lease.token
    assert renewed.expires_at > lease.expires_at


async def test_close_releases_held_leases(pg_url: str) -> None:
    first = PostgresSupervisor(pg_url)
    await first.open()
    assert await first.acquire("k", owner="a", ttl=300) is not None
    await first.close()
    second = PostgresSupervisor(pg_url)
    await second.open()
    try:
        assert await second.acquire("k", owner="b", ttl=30) is not None
    finally:
        await second.close()


async def test_node_registry(supervisor: PostgresSupervisor) -> None:
    now = datetime.now(UTC)
    node = Node(id="n1", service="gateway", host="h", version="0.1", started_at=now, heartbeat_at=now,
                meta={"port": "9090"})
    await supervisor.register(node)
    await supervisor.register(Node(id="n2", service="scheduler", host="h", version="0.1",
                                   started_at=now, heartbeat_at=now))
    nodes = await supervisor.nodes()
    assert [n.id for n in nodes] == ["n1", "n2"]
    assert nodes[0].meta == {"port": "9090"}


async def test_terminated_connections_are_replaced(
    supervisor: PostgresSupervisor, pg_url: str
) -> None:
    assert await supervisor.acquire("a", owner="x", ttl=30) is not None
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    assert await supervisor.acquire("b", owner="x", ttl=30) is not None


async def test_unreachable_server_is_unavailable() -> None:
    sup = PostgresSupervisor("postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(SupervisorUnavailable, match=r"127\.0\.0\.1:1"):
        await sup.open()
