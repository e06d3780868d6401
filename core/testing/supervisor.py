"""The supervisor conformance suite: exclusive leases that expire and fence, and a node registry.

Checks what the supervisor protocol of :mod:`hookspecs` promises. Two adapters opened from the same URL are
two clients (two nodes) of one supervisor service.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from core.testing._base import AdapterPool, AdapterSuite, create_adapter, requires
from hookspecs import Capability, Lease, LeaseListing, Node, Supervisor


def make_node(service: str = "scheduler", **meta: str) -> Node:
    """A node as a running process registers itself, heartbeat now."""
    now = datetime.now(UTC)
    return Node(
        id=f"node-{uuid.uuid4().hex[:10]}", service=service, host="127.0.0.1", version="0.1.0",
        started_at=now, heartbeat_at=now, meta=dict(meta),
    )


class SupervisorSuite(AdapterSuite):
    """Subclass it and override ``adapter_url`` (or ``make_adapter``).

    :cvar short_ttl: the lease TTL, in seconds, of the expiry tests (raise it for services
        with a minimum TTL, e.g. Consul's 10 s).
    :cvar expiry_timeout: seconds to wait for an expired lease to be taken over.
    """

    kind = "supervisor"
    short_ttl: ClassVar[float] = 1.0
    expiry_timeout: ClassVar[float] = 30.0

    @pytest.fixture
    def key(self) -> str:
        """A lease key of this test alone."""
        return f"conformance/{uuid.uuid4().hex[:12]}"

    async def _take_over(self, supervisor: Supervisor, key: str, owner: str) -> Lease:
        """Acquire ``key`` as soon as its current lease lapses (polling, with a deadline)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.expiry_timeout
        while (lease := await supervisor.acquire(key, owner=owner, ttl=60)) is None:
            if loop.time() > deadline:
                pytest.fail(f"a lease of TTL {self.short_ttl}s on {key!r} was still held after {self.expiry_timeout}s")
            await asyncio.sleep(min(0.2, self.short_ttl / 4))
        return lease

    async def test_adapter_is_a_supervisor(self, adapter: Supervisor) -> None:
        assert isinstance(adapter, Supervisor)

    async def test_acquire_gives_a_lease_on_the_key(self, adapter: Supervisor, key: str) -> None:
        before = datetime.now(UTC)
        lease = await adapter.acquire(key, owner="alpha", ttl=30)
        assert lease is not None
        assert (lease.key, lease.owner) == (key, "alpha")
        assert isinstance(lease.token, int)
        assert lease.expires_at > before
        assert await adapter.is_current(lease)

    async def test_a_held_lease_is_exclusive(self, adapters: AdapterPool, key: str) -> None:
        one, two = await adapters.open(), await adapters.open()
        held = await one.acquire(key, owner="alpha", ttl=30)
        assert held is not None
        assert await two.acquire(key, owner="beta", ttl=30) is None
        assert await one.acquire(key, owner="gamma", ttl=30) is None
        assert await two.is_current(held)

    async def test_concurrent_acquires_give_one_lease(self, adapters: AdapterPool, key: str) -> None:
        clients = [await adapters.open() for _ in range(3)]
        leases = await asyncio.gather(*(c.acquire(key, owner=f"o{i}", ttl=30) for i, c in enumerate(clients)))
        assert len([lease for lease in leases if lease is not None]) == 1

    async def test_keys_are_independent(self, adapter: Supervisor, key: str) -> None:
        assert await adapter.acquire(key + "/a", owner="alpha", ttl=30) is not None
        assert await adapter.acquire(key + "/b", owner="beta", ttl=30) is not None

    async def test_release_frees_the_key_and_the_next_token_is_greater(
        self, adapters: AdapterPool, key: str
    ) -> None:
        one, two = await adapters.open(), await adapters.open()
        tokens = []
        for round_ in range(3):
            holder = one if round_ % 2 == 0 else two
            lease = await holder.acquire(key, owner=f"owner{round_}", ttl=30)
            assert lease is not None, f"round {round_}: the key was not free after release"
            tokens.append(lease.token)
            await holder.release(lease)
            assert not await one.is_current(lease)
        assert tokens == sorted(set(tokens)), f"fencing tokens must strictly increase: {tokens}"

    async def test_renew_extends_a_held_lease(self, adapter: Supervisor, key: str) -> None:
        lease = await adapter.acquire(key, owner="alpha", ttl=30)
        assert lease is not None
        renewed = await adapter.renew(lease, ttl=120)
        assert renewed is not None
        assert (renewed.key, renewed.owner, renewed.token) == (lease.key, lease.owner, lease.token)
        assert renewed.expires_at > lease.expires_at
        assert await adapter.is_current(renewed)

    async def test_an_expired_lease_is_taken_over_and_fenced(self, adapters: AdapterPool, key: str) -> None:
        one, two = await adapters.open(), await adapters.open()
        stale = await one.acquire(key, owner="sleeper", ttl=self.short_ttl)
        assert stale is not None
        fresh = await self._take_over(two, key, "waker")
        assert fresh.token > stale.token
        assert await two.is_current(fresh)
        assert not await one.is_current(stale), "a lease that expired and was taken is still current"
        assert await one.renew(stale, ttl=30) is None, "a lost lease was renewed"
        await one.release(stale)
        assert await two.is_current(fresh), "releasing a lost lease released the new holder's"

    async def test_close_releases_the_leases_of_the_process(self, adapters: AdapterPool, key: str) -> None:
        one, two = await adapters.open(), await adapters.open()
        held = await one.acquire(key, owner="alpha", ttl=60)
        assert held is not None
        await one.close()
        await one.open()
        taken = await two.acquire(key, owner="beta", ttl=60)
        assert taken is not None, "close() did not release the process's lease"
        assert taken.token > held.token

    async def test_registered_nodes_are_listed(self, adapters: AdapterPool) -> None:
        one, two = await adapters.open(), await adapters.open()
        gateway, scheduler = make_node("gateway", zone="a"), make_node("scheduler")
        await one.register(gateway)
        await two.register(scheduler)
        listed = {node.id: node for node in await one.nodes()}
        assert gateway.id in listed and scheduler.id in listed
        got = listed[gateway.id]
        assert (got.service, got.host, got.version, got.meta) == ("gateway", "127.0.0.1", "0.1.0", {"zone": "a"})

    async def test_register_again_refreshes_the_heartbeat(self, adapter: Supervisor) -> None:
        node = make_node()
        await adapter.register(node)
        first = next(n for n in await adapter.nodes() if n.id == node.id)
        await asyncio.sleep(0.01)
        node.heartbeat_at = datetime.now(UTC)
        await adapter.register(node)
        listed = [n for n in await adapter.nodes() if n.id == node.id]
        assert len(listed) == 1, "a node registered twice is listed twice"
        assert listed[0].heartbeat_at > first.heartbeat_at

    async def test_a_lapsed_lease_is_not_current_even_before_it_is_taken(self, adapter: Supervisor, key: str) -> None:
        lease = await adapter.acquire(key, owner="sleeper", ttl=self.short_ttl)
        assert lease is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.expiry_timeout
        while await adapter.is_current(lease):
            if loop.time() > deadline:
                pytest.fail(f"a lease of TTL {self.short_ttl}s was still current after {self.expiry_timeout}s")
            await asyncio.sleep(min(0.2, self.short_ttl / 4))

    async def test_a_frozen_holder_is_fenced_after_every_later_holder(self, adapters: AdapterPool, key: str) -> None:
        """A holder that froze past its TTL while the key changed hands twice stays fenced out:
        its token is below the live one and it can neither renew nor release the live lease."""
        frozen, other = await adapters.open(), await adapters.open()
        stale = await frozen.acquire(key, owner="frozen", ttl=self.short_ttl)
        assert stale is not None
        second = await self._take_over(other, key, "second")
        await other.release(second)
        third = await other.acquire(key, owner="third", ttl=60)
        assert third is not None and third.token > second.token > stale.token
        assert not await frozen.is_current(stale)
        assert await frozen.renew(stale, ttl=60) is None
        assert await frozen.acquire(key, owner="frozen", ttl=60) is None
        await frozen.release(stale)
        assert await frozen.is_current(third), "a fenced holder's release freed the live lease"

    async def test_a_released_lease_cannot_be_renewed(self, adapter: Supervisor, key: str) -> None:
        lease = await adapter.acquire(key, owner="alpha", ttl=30)
        assert lease is not None
        await adapter.release(lease)
        assert await adapter.renew(lease, ttl=30) is None, "a released lease was renewed"
        assert not await adapter.is_current(lease)

    @requires(Capability.LEASES)
    async def test_leases_lists_who_holds_each_live_lease_and_until_when(
        self, adapters: AdapterPool, key: str
    ) -> None:
        first, second = await adapters.open(), await adapters.open()
        kept = await first.acquire(key + "/kept", owner="node-a", ttl=60)
        gone = await second.acquire(key + "/gone", owner="node-b", ttl=60)
        assert kept is not None and gone is not None
        await second.release(gone)
        assert isinstance(second, LeaseListing), "an adapter declaring Capability.LEASES has leases()"
        listed = {lease.key: lease for lease in await second.leases() if lease.key.startswith(key)}
        assert list(listed) == [kept.key], "a released lease is not listed; a held one is, from any client"
        assert (listed[kept.key].owner, listed[kept.key].token) == ("node-a", kept.token)
        assert abs((listed[kept.key].expires_at - kept.expires_at).total_seconds()) < 5

    async def test_renewing_keeps_a_lease_past_its_ttl(self, adapters: AdapterPool, key: str) -> None:
        holder, other = await adapters.open(), await adapters.open()
        lease = await holder.acquire(key, owner="alpha", ttl=self.short_ttl)
        assert lease is not None
        for _ in range(6):  # three TTLs in all, renewed at half the TTL
            await asyncio.sleep(self.short_ttl / 2)
            renewed = await holder.renew(lease, ttl=self.short_ttl)
            assert renewed is not None and renewed.token == lease.token
            assert await other.acquire(key, owner="beta", ttl=self.short_ttl) is None
        assert await other.is_current(lease)

    def node_ttl_options(self) -> dict[str, Any]:
        """Adapter options under which a node silent for ``short_ttl`` drops out of ``nodes()``
        (override if your adapter does not call the option ``node_ttl``)."""
        return {"node_ttl": self.short_ttl}

    async def test_a_node_that_stops_heartbeating_drops_out(
        self, service_url: str, adapter_options: dict[str, Any]
    ) -> None:
        options = {**adapter_options, **self.node_ttl_options()}
        pool = AdapterPool(lambda: create_adapter(self.kind, service_url, options))
        try:
            supervisor: Supervisor = await pool.open()
            silent, alive = make_node("gateway"), make_node("scheduler")
            await supervisor.register(silent)
            await supervisor.register(alive)
            assert {silent.id, alive.id} <= {n.id for n in await supervisor.nodes()}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 4 * self.short_ttl + self.expiry_timeout
            while silent.id in {n.id for n in await supervisor.nodes()}:
                assert loop.time() < deadline, "a node that stopped heartbeating is still listed"
                await asyncio.sleep(self.short_ttl / 4)
                alive = dataclasses.replace(alive, heartbeat_at=datetime.now(UTC))
                await supervisor.register(alive)  # the live node keeps heartbeating
            assert alive.id in {n.id for n in await supervisor.nodes()}
        finally:
            await pool.close_all()


#: The holder process of :class:`SupervisorProcessSuite`: takes the lease, prints its token, then
#: on a line of input prints whether the lease is current and whether a renew goes through.
_HOLDER = """
import asyncio, json, sys
from core.testing import create_adapter

async def main() -> None:
    supervisor = create_adapter("supervisor", sys.argv[1], json.loads(sys.argv[2]))
    await supervisor.open()
    lease = await supervisor.acquire(sys.argv[3], owner="sleeper", ttl=float(sys.argv[4]))
    print(lease.token, flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    current = await supervisor.is_current(lease)
    renewed = await supervisor.renew(lease, ttl=float(sys.argv[4]))
    await supervisor.release(lease)
    print(current, renewed is not None, flush=True)
    await supervisor.close()

asyncio.run(main())
"""


class SupervisorProcessSuite(AdapterSuite):
    """For supervisors that several processes share (not ``local://``): a holder process frozen
    with SIGSTOP past its lease wakes up fenced. Needs ``adapter_url`` (the child builds its own
    adapter from it) and a platform with SIGSTOP.

    :cvar short_ttl: the holder's lease TTL, in seconds (the service's minimum, e.g. Consul's 10).
    :cvar expiry_timeout: seconds, beyond four TTLs, to wait for the lapsed lease to be free.
    """

    kind = "supervisor"
    short_ttl: ClassVar[float] = 1.0
    expiry_timeout: ClassVar[float] = 30.0

    async def test_a_frozen_holder_process_wakes_up_fenced(
        self, service_url: str, adapter_options: dict[str, Any], adapters: AdapterPool
    ) -> None:
        key = f"conformance/{uuid.uuid4().hex[:12]}"
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, service_url, json.dumps(adapter_options), key, str(self.short_ttl)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdin is not None
            stale_token = int(await asyncio.to_thread(holder.stdout.readline))
            os.kill(holder.pid, signal.SIGSTOP)
            waker: Supervisor = await adapters.open()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 4 * self.short_ttl + self.expiry_timeout
            while (fresh := await waker.acquire(key, owner="waker", ttl=60)) is None:
                assert loop.time() < deadline, "the frozen holder's lease never lapsed"
                await asyncio.sleep(self.short_ttl / 4)
            assert fresh.token > stale_token
            os.kill(holder.pid, signal.SIGCONT)
            holder.stdin.write("wake\n")
            holder.stdin.flush()
            answer = (await asyncio.to_thread(holder.stdout.readline)).split()
            assert answer == ["False", "False"], f"the woken holder saw current, renewed = {answer}"
            assert await waker.is_current(fresh), "the woken holder's release freed the new holder's lease"
            assert await asyncio.to_thread(holder.wait, 30) == 0
        finally:
            if holder.poll() is None:  # a failed test: wake it and stop it
                os.kill(holder.pid, signal.SIGCONT)
                holder.kill()
