"""The PostgreSQL pub/sub against a real server: groups, redelivery, catch-up, big bodies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hookspecs import JOBS_TOPIC, ConfigError, Delivery, Message

from core_plugin_postgres.pubsub import PostgresPubSub, PostgresSubscription


@pytest.fixture
async def pubsub(pg_url: str) -> AsyncIterator[PostgresPubSub]:
    # A long poll interval: deliveries in these tests arrive through NOTIFY, not polling.
    broker = PostgresPubSub(pg_url, ack_timeout=60, poll_interval=30)
    await broker.open()
    yield broker
    await broker.close()


async def take(subscription: PostgresSubscription, count: int, *, ack: bool = True) -> list[Delivery]:
    """The next ``count`` deliveries (acknowledged unless told), within a deadline."""
    got: list[Delivery] = []

    async def run() -> None:
        async for delivery in subscription:
            got.append(delivery)
            if ack:
                await delivery.ack()
            if len(got) == count:
                return

    await asyncio.wait_for(run(), 10)
    return got


def bodies(deliveries: list[Delivery]) -> list[bytes]:
    return [d.message.body for d in deliveries]


async def test_delivers_body_attributes_and_key(pubsub: PostgresPubSub) -> None:
    sub = await pubsub.subscribe("t", group="g")
    await pubsub.publish("t", [Message(b"one", {"a": "1"}, key="k"), Message(b"two")])
    got = await take(sub, 2)
    assert bodies(got) == [b"one", b"two"]
    assert dict(got[0].message.attributes) == {"a": "1"} and got[0].message.key == "k"


async def test_hint_topics_and_durable_topics_in_one_batch(pubsub: PostgresPubSub) -> None:
    jobs = await pubsub.subscribe(JOBS_TOPIC, group="g")
    orders = await pubsub.subscribe("orders", group="g")
    await asyncio.gather(  # concurrent publishes share one statement: durable, as "orders" needs
        pubsub.publish(JOBS_TOPIC, [Message(b"job")]), pubsub.publish("orders", [Message(b"order")])
    )
    assert bodies(await take(jobs, 1)) == [b"job"]
    assert bodies(await take(orders, 1)) == [b"order"]
    await pubsub.publish(JOBS_TOPIC, [Message(b"hint only")])  # alone: not waiting for the flush
    assert bodies(await take(jobs, 1)) == [b"hint only"]


async def test_payload_over_the_notify_limit(pubsub: PostgresPubSub) -> None:
    sub = await pubsub.subscribe("big", group="g")
    body = bytes(range(256)) * 400  # 100 kB, binary
    await pubsub.publish("big", [Message(body, {"x": "y" * 9000})])
    [delivery] = await take(sub, 1)
    assert delivery.message.body == body and delivery.message.attributes["x"] == "y" * 9000


async def test_each_message_to_one_member_of_a_group(pubsub: PostgresPubSub, pg_url: str) -> None:
    other = PostgresPubSub(pg_url, prefetch=5, ack_timeout=60, poll_interval=30)
    await other.open()
    try:
        first = await pubsub.subscribe("t", group="g")
        second = await other.subscribe("t", group="g")
        await pubsub.publish("t", [Message(str(i).encode()) for i in range(40)])
        seen: list[bytes] = []

        async def drain(sub: PostgresSubscription) -> None:
            async for delivery in sub:
                seen.append(delivery.message.body)
                await delivery.ack()
                await asyncio.sleep(0)
                if len(seen) >= 40:
                    await first.close()
                    await second.close()

        await asyncio.wait_for(asyncio.gather(drain(first), drain(second)), 10)
        assert sorted(seen) == sorted(str(i).encode() for i in range(40))
    finally:
        await other.close()


async def test_every_group_gets_every_message(pubsub: PostgresPubSub) -> None:
    a = await pubsub.subscribe("t", group="a")
    b = await pubsub.subscribe("t", group="b")
    await pubsub.publish("t", [Message(b"1"), Message(b"2")])
    assert bodies(await take(a, 2)) == [b"1", b"2"]
    assert bodies(await take(b, 2)) == [b"1", b"2"]


async def test_nack_redelivers(pubsub: PostgresPubSub) -> None:
    sub = await pubsub.subscribe("t", group="g")
    await pubsub.publish("t", [Message(b"x")])
    [first] = await take(sub, 1, ack=False)
    await first.nack()
    [again] = await take(sub, 1)
    assert again.message.body == b"x"


async def test_unsettled_delivery_comes_back_after_ack_timeout(pg_url: str) -> None:
    broker = PostgresPubSub(pg_url, ack_timeout=1, poll_interval=0.1)
    await broker.open()
    try:
        sub = await broker.subscribe("t", group="g")
        await broker.publish("t", [Message(b"x")])
        await take(sub, 1, ack=False)  # the holder dies without settling
        [again] = await take(sub, 1)  # the row reappears by time, not by a notification
        assert again.message.body == b"x"
    finally:
        await broker.close()


def test_bad_options_are_refused(pg_url: str) -> None:
    with pytest.raises(ConfigError, match="poll_interval"):
        PostgresPubSub(pg_url, ack_timeout=5, poll_interval=10)


async def test_closed_member_hands_unsettled_deliveries_back(pubsub: PostgresPubSub, pg_url: str) -> None:
    first = await pubsub.subscribe("t", group="g")
    await pubsub.publish("t", [Message(b"x"), Message(b"y")])
    await take(first, 1, ack=False)
    await first.close()
    other = PostgresPubSub(pg_url, ack_timeout=60, poll_interval=30)
    await other.open()
    try:
        second = await other.subscribe("t", group="g")
        assert sorted(bodies(await take(second, 2))) == [b"x", b"y"]
    finally:
        await other.close()


async def test_acked_message_is_not_delivered_again(pubsub: PostgresPubSub, pg_url: str) -> None:
    sub = await pubsub.subscribe("t", group="g")
    await pubsub.publish("t", [Message(b"done")])
    await take(sub, 1)
    await sub.close()
    await pubsub.publish("t", [Message(b"next")])
    again = await pubsub.subscribe("t", group="g")
    assert bodies(await take(again, 1)) == [b"next"]


async def test_offline_member_catches_up(pg_url: str) -> None:
    consumer = PostgresPubSub(pg_url, ack_timeout=60, poll_interval=30)
    await consumer.open()
    sub = await consumer.subscribe("t", group="g")
    await consumer.close()  # the scheduler goes away; its group stays
    producer = PostgresPubSub(pg_url)
    await producer.open()
    await producer.publish("t", [Message(str(i).encode()) for i in range(3)])
    await producer.close()
    back = PostgresPubSub(pg_url, ack_timeout=60, poll_interval=30)
    await back.open()
    try:
        sub = await back.subscribe("t", group="g")
        assert bodies(await take(sub, 3)) == [b"0", b"1", b"2"]
    finally:
        await back.close()


async def test_listen_connection_loss_is_survived(pubsub: PostgresPubSub, pg_url: str) -> None:
    import asyncpg

    sub = await pubsub.subscribe("t", group="g")
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    await pubsub.publish("t", [Message(b"after")])
    assert bodies(await take(sub, 1)) == [b"after"]
