"""What the memory pub/sub adds to the conformance kit: bounded memory with backpressure,
its options, and use before ``open``."""

from __future__ import annotations

import asyncio

import pytest

from core.builtin.memory.pubsub import MemoryPubSub
from core.errors import CoreError
from hookspecs import Message, PubSubUnavailable


async def opened(**options: float) -> MemoryPubSub:
    broker = MemoryPubSub("memory://unit", **options)
    await broker.open()
    return broker


async def test_a_full_group_makes_publishers_wait_then_reports_unavailable() -> None:
    broker = await opened(max_pending=2, publish_timeout=0.2)
    await broker.subscribe("t", group="slow")
    await broker.publish("t", [Message(b"1"), Message(b"2")])
    with pytest.raises(PubSubUnavailable, match="max_pending=2"):
        await broker.publish("t", [Message(b"3")])


async def test_a_waiting_publisher_goes_on_once_a_delivery_is_acknowledged() -> None:
    broker = await opened(max_pending=1, publish_timeout=30)
    subscription = await broker.subscribe("t", group="g")
    await broker.publish("t", [Message(b"1")])
    blocked = asyncio.create_task(broker.publish("t", [Message(b"2")]))
    deliveries = aiter(subscription)
    first = await anext(deliveries)
    await asyncio.sleep(0)
    assert not blocked.done(), "an unacknowledged delivery still holds its room"
    await first.ack()
    await asyncio.wait_for(blocked, 5)
    assert (await anext(deliveries)).message.body == b"2"
    await subscription.close()


async def test_messages_of_a_topic_without_groups_are_not_kept() -> None:
    broker = await opened(max_pending=1, publish_timeout=0)
    await broker.publish("nobody", [Message(b"x")] * 10)


async def test_use_before_open_or_after_close_is_unavailable() -> None:
    broker = MemoryPubSub("memory://unit")
    with pytest.raises(PubSubUnavailable, match="not open"):
        await broker.publish("t", [Message(b"x")])
    await broker.open()
    await broker.close()
    with pytest.raises(PubSubUnavailable):
        await broker.subscribe("t", group="g")


@pytest.mark.parametrize("options", [{"colour": "red"}, {"max_pending": 0}, {"publish_timeout": -1}])
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(CoreError):
        MemoryPubSub("memory://", **options)
