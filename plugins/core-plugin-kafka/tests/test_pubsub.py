"""The Kafka adapter against a Kafka-protocol broker (the librdkafka mock cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from conftest import Cluster, url_for
from inbox import Inbox

from core_plugin_kafka.pubsub import KafkaPubSub
from hookspecs.pubsub import Delivery, Message, PubSubUnavailable


@pytest.fixture
async def pubsub(kafka_url: str) -> AsyncIterator[KafkaPubSub]:
    adapter = KafkaPubSub(kafka_url)
    await adapter.open()
    yield adapter
    await adapter.close()


def bodies(deliveries: Sequence[Delivery]) -> list[bytes]:
    return sorted(d.message.body for d in deliveries)


def numbered(count: int, start: int = 0) -> list[Message]:
    return [Message(f"m{i:03}".encode(), key=f"k{i}") for i in range(start, start + count)]


async def ack_all(deliveries: Sequence[Delivery]) -> None:
    for delivery in deliveries:
        await delivery.ack()


async def test_round_trip_keeps_body_attributes_and_key(pubsub: KafkaPubSub) -> None:
    async with Inbox(await pubsub.subscribe("orders", group="a")) as inbox:
        sent = Message(b"\x00one", {"content-type": "x/y", "n": "1"}, key="k1")
        await pubsub.publish("orders", [sent])
        delivery = await inbox.get()
        assert delivery.message == sent
        await delivery.ack()


async def test_every_group_gets_every_message(pubsub: KafkaPubSub) -> None:
    async with Inbox(await pubsub.subscribe("fan", group="a")) as a, \
               Inbox(await pubsub.subscribe("fan", group="b")) as b:
        await pubsub.publish("fan", numbered(10))
        for inbox in (a, b):
            got = await inbox.take(10)
            assert bodies(got) == bodies_of(numbered(10))
            await ack_all(got)


def bodies_of(messages: Sequence[Message]) -> list[bytes]:
    return sorted(m.body for m in messages)


async def test_members_of_one_group_share_the_messages(pubsub: KafkaPubSub) -> None:
    async with Inbox(await pubsub.subscribe("shared", group="workers")) as one, \
               Inbox(await pubsub.subscribe("shared", group="workers")) as two:
        await pubsub.publish("shared", numbered(40))
        got: dict[str, list[Delivery]] = {"one": [], "two": []}
        deadline = asyncio.get_running_loop().time() + 20
        while len(got["one"]) + len(got["two"]) < 40 and asyncio.get_running_loop().time() < deadline:
            got["one"] += await one.quiet(0.2)
            got["two"] += await two.quiet(0.2)
        assert bodies(got["one"] + got["two"]) == bodies_of(numbered(40))  # each exactly once
        assert got["one"] and got["two"]  # both members had a share
        await ack_all(got["one"] + got["two"])


async def test_nack_delivers_the_message_again(pubsub: KafkaPubSub) -> None:
    async with Inbox(await pubsub.subscribe("retry", group="a")) as inbox:
        await pubsub.publish("retry", [Message(b"again")])
        first = await inbox.get()
        await first.nack()
        second = await inbox.get()
        assert second.message.body == b"again"
        await second.ack()
        assert await inbox.quiet(0.5) == []


async def test_unacknowledged_messages_go_to_the_next_member(kafka_url: str) -> None:
    """Offsets are committed only up to the first unacknowledged delivery of a partition."""
    adapter = KafkaPubSub(kafka_url)
    await adapter.open()
    try:
        inbox = Inbox(await adapter.subscribe("handover", group="g"))
        await adapter.publish("handover", [Message(f"m{i}".encode(), key="same") for i in range(3)])
        got = await inbox.take(3)
        assert [d.message.body for d in got] == [b"m0", b"m1", b"m2"]  # one key: one partition, in order
        await got[0].ack()
        await got[2].ack()  # m1 stays unacknowledged: the commit stops before it
        await inbox.close()
        async with Inbox(await adapter.subscribe("handover", group="g")) as again:
            redelivered = await again.take(2)
            assert [d.message.body for d in redelivered] == [b"m1", b"m2"]
            await ack_all(redelivered)
            assert await again.quiet(0.5) == []
    finally:
        await adapter.close()


async def test_acknowledged_messages_are_not_delivered_again(kafka_url: str) -> None:
    adapter = KafkaPubSub(kafka_url)
    await adapter.open()
    try:
        async with Inbox(await adapter.subscribe("done", group="g")) as inbox:
            await adapter.publish("done", numbered(5))
            await ack_all(await inbox.take(5))
        async with Inbox(await adapter.subscribe("done", group="g")) as again:
            await adapter.publish("done", numbered(1, start=5))
            assert [d.message.body for d in await again.take(1)] == [b"m005"]
            assert await again.quiet(0.5) == []
    finally:
        await adapter.close()


async def test_poison_message_goes_to_the_dead_letter_topic(bootstrap: str) -> None:
    adapter = KafkaPubSub(url_for(bootstrap, max_redeliveries=2, redelivery_delay_ms=10))
    await adapter.open()
    try:
        dead = Inbox(await adapter.subscribe("events.dlq", group="inspect"))
        async with Inbox(await adapter.subscribe("events", group="trigger")) as inbox:
            await adapter.publish("events", [Message(b"not json", {"origin": "shop"}, key="k")])
            for _ in range(3):  # the first delivery and two redeliveries
                await (await inbox.get()).nack()
            letter = await dead.get()
            assert letter.message.body == b"not json"
            assert letter.message.key == "k"
            attrs = letter.message.attributes
            assert attrs["origin"] == "shop"
            assert attrs["core-dlq-topic"] == adapter.options.topic("events")
            assert attrs["core-dlq-group"] == adapter.options.group("trigger")
            assert attrs["core-dlq-deliveries"] == "3"
            await letter.ack()
            assert await inbox.quiet(0.5) == []  # not delivered a fourth time
        async with Inbox(await adapter.subscribe("events", group="trigger")) as again:
            await adapter.publish("events", [Message(b"next")])
            assert (await again.get()).message.body == b"next"  # the poison was committed
        await dead.close()
    finally:
        await adapter.close()


async def test_publish_fails_fast_while_the_brokers_are_down_then_recovers(private_cluster: Cluster) -> None:
    adapter = KafkaPubSub(url_for(private_cluster.bootstrap, publish_timeout_ms=1500))
    await adapter.open()
    try:
        async with Inbox(await adapter.subscribe("jobs", group="schedulers")) as inbox:
            await adapter.publish("jobs", [Message(b"before")])
            await (await inbox.get()).ack()
            private_cluster.down()
            with pytest.raises(PubSubUnavailable):
                await adapter.publish("jobs", [Message(b"during")])
            private_cluster.up()
            deadline = asyncio.get_running_loop().time() + 30
            while True:  # librdkafka reconnects by itself, with backoff
                try:
                    await adapter.publish("jobs", [Message(b"after")])
                    break
                except PubSubUnavailable:
                    assert asyncio.get_running_loop().time() < deadline
            got = await inbox.get(30)
            assert got.message.body == b"after"
            await got.ack()
    finally:
        await adapter.close()


async def test_open_fails_when_no_broker_answers() -> None:
    adapter = KafkaPubSub("kafka://127.0.0.1:9?publish_timeout_ms=500")
    with pytest.raises(PubSubUnavailable, match="no Kafka broker answered"):
        await adapter.open()
