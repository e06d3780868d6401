"""At-least-once delivery beyond the conformance kit: partitions shared in a group, commits
only after acknowledgement, dead letters, and a full broker outage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from confluent_kafka import Consumer, TopicPartition
from conftest import Cluster, close_consumer
from core.testing import Inbox, ack_all, bodies
from hookspecs import Message, PubSubUnavailable

from core_plugin_kafka.pubsub import KafkaPubSub

#: ``await opened(url)``: an adapter opened for the test, closed after it.
Opener = Callable[[str], Awaitable[KafkaPubSub]]


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    box = Inbox(timeout=20.0, quiet=0.5)
    yield box
    await box.close()


@pytest.fixture
async def opened() -> AsyncIterator[Opener]:
    adapters: list[KafkaPubSub] = []

    async def open_(url: str) -> KafkaPubSub:
        adapter = KafkaPubSub(url)
        await adapter.open()
        adapters.append(adapter)
        return adapter

    yield open_
    for adapter in adapters:
        await adapter.close()


def committed(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    """The offsets ``group`` committed on ``topic``, as the group coordinator reports them."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return {tp.partition: tp.offset
                for tp in reader.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)}
    finally:
        close_consumer(reader)


async def test_members_of_one_group_split_the_partitions(opened: Opener, inbox: Inbox, kafka_url: str) -> None:
    adapter = await opened(kafka_url)
    inbox.follow(await adapter.subscribe("shared", group="workers"), "one")
    inbox.follow(await adapter.subscribe("shared", group="workers"), "two")
    sent = [f"m{i:02}".encode() for i in range(40)]
    await adapter.publish("shared", [Message(body, key=body.decode()) for body in sent])
    got = await inbox.take(40)
    await ack_all(got)
    assert bodies(got) == sent  # each message once
    assert {who for who, _ in got} == {"one", "two"}  # and both members had partitions
    assert await inbox.quiet() == []


async def test_a_member_joining_does_not_take_back_what_another_holds(
    opened: Opener, inbox: Inbox, kafka_url: str
) -> None:
    adapter = await opened(kafka_url)
    first = await adapter.subscribe("rebalance", group="g")
    inbox.follow(first, "a")
    await adapter.publish("rebalance", [Message(b"held")])
    [(who, held)] = await inbox.take(1)
    assert who == "a"
    second = await adapter.subscribe("rebalance", group="g")
    inbox.follow(second, "b")
    # Incremental (cooperative) rebalancing: "a" keeps the partitions it is not asked to give
    # up, so it is never handed "held" a second time; "b" gets it only if it took its partition.
    deadline = asyncio.get_running_loop().time() + 20
    while not (first._trackers and second._trackers and len(first._trackers) + len(second._trackers) == 4):
        assert asyncio.get_running_loop().time() < deadline, "the group did not settle on two members"
        await asyncio.sleep(0.1)
    assert [who for who, _ in await inbox.quiet()] in ([], ["b"])
    await held.ack()


async def test_the_commit_stops_at_the_first_unacknowledged_delivery(
    opened: Opener, inbox: Inbox, kafka_url: str, bootstrap: str
) -> None:
    adapter = await opened(kafka_url)
    inbox.follow(await adapter.subscribe("handover", group="g"), "a")
    # One key, so one partition, in order: m0 m1 m2.
    await adapter.publish("handover", [Message(f"m{i}".encode(), key="same") for i in range(3)])
    got = await inbox.take(3)
    assert [d.message.body for _, d in got] == [b"m0", b"m1", b"m2"]
    await got[0][1].ack()
    await got[2][1].ack()  # m1 is still unacknowledged
    await inbox.leave("a")
    topic, group = adapter.options.topic("handover"), adapter.options.group("g")
    [start] = [offset for offset in committed(bootstrap, topic, group).values() if offset > 0]
    assert start == 1  # the offset of m1: m0 is done, m1 is not, m2 waits behind it
    inbox.follow(await adapter.subscribe("handover", group="g"), "b")
    again = await inbox.take(2)
    assert [d.message.body for _, d in again] == [b"m1", b"m2"]  # at least once: m2 comes again
    await ack_all(again)
    assert await inbox.quiet() == []


async def test_a_message_nacked_too_often_goes_to_the_dead_letter_topic(
    opened: Opener, inbox: Inbox, make_url: Callable[..., str], bootstrap: str
) -> None:
    adapter = await opened(make_url(bootstrap, max_redeliveries=2, redelivery_delay_ms=10))
    inbox.follow(await adapter.subscribe("events.dlq", group="inspect"), "dlq")
    inbox.follow(await adapter.subscribe("events", group="trigger"), "trigger")
    await adapter.publish("events", [Message(b"not json", {"origin": "shop"}, key="k")])
    for _ in range(3):  # the first delivery and two redeliveries
        [(who, delivery)] = await inbox.take(1)
        assert who == "trigger"
        await delivery.nack()
    [(who, letter)] = await inbox.take(1)
    assert (who, letter.message.body, letter.message.key) == ("dlq", b"not json", "k")
    assert letter.message.attributes == {
        "origin": "shop",
        "core-dlq-topic": adapter.options.topic("events"),
        "core-dlq-partition": letter.message.attributes["core-dlq-partition"],
        "core-dlq-offset": "0",
        "core-dlq-group": adapter.options.group("trigger"),
        "core-dlq-deliveries": "3",
    }
    await letter.ack()
    assert await inbox.quiet() == []  # no fourth delivery
    await inbox.leave("trigger")
    inbox.follow(await adapter.subscribe("events", group="trigger"), "again")
    await adapter.publish("events", [Message(b"next")])
    got = await inbox.take(1)
    assert bodies(got) == [b"next"]  # the dead-lettered message was committed
    await ack_all(got)


async def test_publish_fails_within_its_timeout_while_the_brokers_are_down_then_recovers(
    opened: Opener, inbox: Inbox, make_url: Callable[..., str], private_cluster: Cluster
) -> None:
    adapter = await opened(make_url(private_cluster.bootstrap, publish_timeout_ms=1500))
    inbox.follow(await adapter.subscribe("jobs", group="schedulers"), "a")
    await adapter.publish("jobs", [Message(b"before")])
    await ack_all(await inbox.take(1))
    private_cluster.down()
    with pytest.raises(PubSubUnavailable, match="timed out"):
        await adapter.publish("jobs", [Message(b"during")])
    private_cluster.up()
    deadline = asyncio.get_running_loop().time() + 30
    while True:  # librdkafka reconnects by itself (with backoff)
        try:
            await adapter.publish("jobs", [Message(b"after")])
            break
        except PubSubUnavailable:
            assert asyncio.get_running_loop().time() < deadline, "no reconnection within 30 s"
    got = await inbox.take(1)
    assert bodies(got) == [b"after"]  # the member reconnected too
    await ack_all(got)


async def test_an_unacknowledged_delivery_is_not_lost_across_an_outage(
    opened: Opener, inbox: Inbox, make_url: Callable[..., str], private_cluster: Cluster
) -> None:
    adapter = await opened(make_url(private_cluster.bootstrap))
    inbox.follow(await adapter.subscribe("jobs", group="schedulers"), "a")
    await adapter.publish("jobs", [Message(b"held")])
    await inbox.take(1)  # and never acknowledged
    private_cluster.down()
    await asyncio.sleep(1)
    private_cluster.up()
    await inbox.leave("a")
    inbox.follow(await adapter.subscribe("jobs", group="schedulers"), "b")
    got = await inbox.take(1)
    assert [(who, d.message.body) for who, d in got] == [("b", b"held")]
    await ack_all(got)


async def test_a_member_holds_at_most_max_in_flight_unsettled_deliveries(
    opened: Opener, inbox: Inbox, make_url: Callable[..., str], bootstrap: str
) -> None:
    adapter = await opened(make_url(bootstrap, max_in_flight=2))
    inbox.follow(await adapter.subscribe("busy", group="g"), "a")
    await adapter.publish("busy", [Message(f"m{i}".encode(), key="same") for i in range(4)])
    first = await inbox.take(2)
    assert await inbox.quiet() == []  # two unsettled: fetching is paused
    await first[0][1].ack()
    third = await inbox.take(1)
    assert await inbox.quiet() == []
    await ack_all([first[1], *third])
    fourth = await inbox.take(1)
    assert [d.message.body for _, d in first + third + fourth] == [b"m0", b"m1", b"m2", b"m3"]
    await ack_all(fourth)
