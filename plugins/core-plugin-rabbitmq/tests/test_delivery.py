"""At-least-once delivery beyond the conformance kit: busy and killed members, dead letters."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from core.errors import ConfigError
from core.testing.pubsub import Inbox, ack_all, bodies
from hookspecs import Delivery, Message

from core_plugin_rabbitmq._subscription import DEAD_GROUP, DEAD_REASON, DEAD_TOPIC, RabbitDelivery
from core_plugin_rabbitmq.pubsub import RabbitPubSub

#: A group member in its own process: prints the first body it receives and hangs, unacked.
MEMBER = """
import asyncio, sys
from core_plugin_rabbitmq.pubsub import RabbitPubSub

async def main():
    adapter = RabbitPubSub(sys.argv[1], {})
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
async def open_adapter() -> AsyncIterator[list[RabbitPubSub]]:
    opened: list[RabbitPubSub] = []
    yield opened
    for adapter in opened:
        await adapter.close()


async def adapter_for(opened: list[RabbitPubSub], url: str) -> RabbitPubSub:
    adapter = RabbitPubSub(url, {})
    await adapter.open()
    opened.append(adapter)
    return adapter


def rabbit_delivery(delivery: Delivery) -> RabbitDelivery:
    assert isinstance(delivery, RabbitDelivery)
    return delivery


async def test_a_busy_member_does_not_hold_back_the_rest_of_its_group(
    rabbitmq_url: str, inbox: Inbox, open_adapter: list[RabbitPubSub]
) -> None:
    busy_adapter = await adapter_for(open_adapter, rabbitmq_url + "&prefetch=1")
    free_adapter = await adapter_for(open_adapter, rabbitmq_url)
    busy = aiter(await busy_adapter.subscribe("orders", group="billing"))
    await busy_adapter.publish("orders", [Message(b"m00")])
    held = await asyncio.wait_for(anext(busy), 10)  # held, unacked: its prefetch of 1 is used
    inbox.follow(await free_adapter.subscribe("orders", group="billing"), "free")
    sent = [f"m{i:02d}".encode() for i in range(1, 20)]
    await busy_adapter.publish("orders", [Message(body) for body in sent])
    got = await inbox.take(len(sent))
    await ack_all(got)
    assert bodies(got) == sent
    await held.ack()
    assert await inbox.quiet() == []


async def test_a_delivery_held_by_a_killed_process_goes_to_another_member(
    rabbitmq_url: str, inbox: Inbox, open_adapter: list[RabbitPubSub]
) -> None:
    adapter = await adapter_for(open_adapter, rabbitmq_url)
    member = subprocess.Popen([sys.executable, "-c", MEMBER, rabbitmq_url], stdout=subprocess.PIPE, text=True)
    try:
        assert member.stdout is not None
        ready = await asyncio.wait_for(asyncio.to_thread(member.stdout.readline), 30)
        assert ready.strip() == "ready"
        await adapter.publish("orders", [Message(b"in the dead process")])
        line = await asyncio.wait_for(asyncio.to_thread(member.stdout.readline), 30)
        assert line.strip() == "in the dead process"
        inbox.follow(await adapter.subscribe("orders", group="billing"), "survivor")
        member.kill()
        member.wait()
        [(_, delivery)] = await inbox.take(1)
        assert delivery.message.body == b"in the dead process"
        assert rabbit_delivery(delivery).deliveries == 2
        await delivery.ack()
    finally:
        member.kill()
        member.wait()


async def test_a_message_nacked_max_deliveries_times_is_dead_lettered_and_kept(
    rabbitmq_url: str, inbox: Inbox, open_adapter: list[RabbitPubSub]
) -> None:
    adapter = await adapter_for(open_adapter, rabbitmq_url + "&max_deliveries=2")
    inbox.follow(await adapter.subscribe("orders", group="billing"), "member")
    await adapter.publish("orders", [Message(b"poison", {"kind": "bad"}, key="k1")])
    for attempt in (1, 2):
        [(who, delivery)] = await inbox.take(1)
        assert (who, rabbit_delivery(delivery).deliveries) == ("member", attempt)
        await delivery.nack()
    assert await inbox.quiet() == [], "a message was delivered more than max_deliveries times"
    inbox.follow(await adapter.subscribe("dead.orders", group="dead-letters"), "dead")
    [(who, dead)] = await inbox.take(1)
    assert (who, dead.message.body, dead.message.key) == ("dead", b"poison", "k1")
    attributes = dead.message.attributes
    assert (attributes["kind"], attributes[DEAD_TOPIC], attributes[DEAD_GROUP]) == ("bad", "orders", "billing")
    assert attributes[DEAD_REASON] == "delivery_limit"
    await dead.ack()
    assert await inbox.quiet() == []


async def test_changing_max_deliveries_of_an_existing_queue_says_what_to_do(
    rabbitmq_url: str, open_adapter: list[RabbitPubSub]
) -> None:
    first = await adapter_for(open_adapter, rabbitmq_url + "&max_deliveries=2")
    await (await first.subscribe("orders", group="billing")).close()
    second = await adapter_for(open_adapter, rabbitmq_url + "&max_deliveries=5")
    with pytest.raises(ConfigError, match="delete that queue"):
        await second.subscribe("orders", group="billing")
    await second.publish("orders", [Message(b"the adapter still works")])
