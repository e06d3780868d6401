"""At-least-once delivery beyond the conformance kit: busy and killed members, dead letters."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from core.testing.pubsub import Inbox, ack_all, bodies
from hookspecs import Delivery, Message

from core_plugin_nats._subscription import DEAD_DELIVERIES, DEAD_GROUP, DEAD_TOPIC, NatsDelivery
from core_plugin_nats.pubsub import NatsPubSub

#: A group member in its own process: prints the first body it receives and hangs, unacked.
MEMBER = """
import asyncio, sys
from core_plugin_nats.pubsub import NatsPubSub

async def main():
    adapter = NatsPubSub(sys.argv[1], {})
    await adapter.open()
    subscription = await adapter.subscribe("orders", group="billing")
    print("ready", flush=True)
    async for delivery in subscription:
        print(delivery.message.body.decode(), flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    box = Inbox(timeout=10.0, quiet=0.5)
    yield box
    await box.close()


@pytest.fixture
async def open_adapter() -> AsyncIterator[list[NatsPubSub]]:
    opened: list[NatsPubSub] = []
    yield opened
    for adapter in opened:
        await adapter.close()


async def adapter_for(opened: list[NatsPubSub], url: str) -> NatsPubSub:
    adapter = NatsPubSub(url, {})
    await adapter.open()
    opened.append(adapter)
    return adapter


def nats_delivery(delivery: Delivery) -> NatsDelivery:
    assert isinstance(delivery, NatsDelivery)
    return delivery


async def test_a_busy_member_does_not_hold_back_the_rest_of_its_group(
    nats_url: str, inbox: Inbox, open_adapter: list[NatsPubSub]
) -> None:
    busy_adapter = await adapter_for(open_adapter, nats_url + "&batch=1")
    free_adapter = await adapter_for(open_adapter, nats_url + "&batch=1")
    busy = aiter(await busy_adapter.subscribe("orders", group="billing"))
    await busy_adapter.publish("orders", [Message(b"m00")])
    held = await asyncio.wait_for(anext(busy), 10)  # held, unacked, and no more iteration
    inbox.follow(await free_adapter.subscribe("orders", group="billing"), "free")
    sent = [f"m{i:02d}".encode() for i in range(1, 20)]
    await busy_adapter.publish("orders", [Message(body) for body in sent])
    got = await inbox.take(len(sent))
    await ack_all(got)
    assert bodies(got) == sent
    await held.ack()
    assert await inbox.quiet() == []


async def test_a_delivery_held_by_a_killed_process_comes_back_after_ack_wait(
    nats_url: str, inbox: Inbox, open_adapter: list[NatsPubSub]
) -> None:
    url = nats_url + "&ack_wait=1"
    adapter = await adapter_for(open_adapter, url)
    member = subprocess.Popen([sys.executable, "-c", MEMBER, url], stdout=subprocess.PIPE, text=True)
    try:
        assert member.stdout is not None
        ready = await asyncio.wait_for(asyncio.to_thread(member.stdout.readline), 30)
        assert ready.strip() == "ready"
        await adapter.publish("orders", [Message(b"in the dead process")])
        line = await asyncio.wait_for(asyncio.to_thread(member.stdout.readline), 30)
        assert line.strip() == "in the dead process"
        member.kill()
        member.wait()
        inbox.follow(await adapter.subscribe("orders", group="billing"), "survivor")
        [(_, delivery)] = await inbox.take(1)
        assert delivery.message.body == b"in the dead process"
        assert nats_delivery(delivery).deliveries == 2
        await delivery.ack()
    finally:
        member.kill()
        member.wait()


async def test_a_message_nacked_max_deliveries_times_is_dead_lettered_and_kept(
    nats_url: str, inbox: Inbox, open_adapter: list[NatsPubSub]
) -> None:
    adapter = await adapter_for(open_adapter, nats_url + "&max_deliveries=2")
    inbox.follow(await adapter.subscribe("orders", group="billing"), "member")
    await adapter.publish("orders", [Message(b"poison", {"kind": "bad"}, key="k1")])
    for attempt in (1, 2):
        [(who, delivery)] = await inbox.take(1)
        assert (who, nats_delivery(delivery).deliveries) == ("member", attempt)
        await delivery.nack()
    assert await inbox.quiet() == [], "a message was delivered more than max_deliveries times"
    inbox.follow(await adapter.subscribe("dead.orders", group="dead-letters"), "dead")
    [(who, dead)] = await inbox.take(1)
    assert (who, dead.message.body, dead.message.key) == ("dead", b"poison", "k1")
    attributes = dead.message.attributes
    assert (attributes["kind"], attributes[DEAD_TOPIC], attributes[DEAD_GROUP]) == ("bad", "orders", "billing")
    assert attributes[DEAD_DELIVERIES] == "2"
    await dead.ack()
    assert await inbox.quiet() == [], "a dead-lettered message was delivered to its group again"


async def test_a_message_redelivered_past_the_limit_without_a_nack_is_dead_lettered(
    nats_url: str, inbox: Inbox, open_adapter: list[NatsPubSub]
) -> None:
    adapter = await adapter_for(open_adapter, nats_url + "&max_deliveries=1&ack_wait=1")
    inbox.follow(await adapter.subscribe("orders", group="billing"), "stuck")
    inbox.follow(await adapter.subscribe("dead.orders", group="inspector"), "dead")
    await adapter.publish("orders", [Message(b"never settled")])
    [(who, _)] = await inbox.take(1)  # held and never settled: back after ack_wait, once too often
    assert who == "stuck"
    [(who, dead)] = await inbox.take(1)
    assert (who, dead.message.body, dead.message.attributes[DEAD_DELIVERIES]) == ("dead", b"never settled", "2")
    await dead.ack()
    assert await inbox.quiet() == []
