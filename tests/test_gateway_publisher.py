"""The gateway's realtime publisher: jobs whose publish failed are offered again for a while (a
broker reconnecting is back a moment after its server), then left to the schedule; and the
message it publishes (:mod:`core.ready_jobs`), read by schedulers old and new."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson

from core.builtin.memory.pubsub import MemoryPubSub
from core.gateway.publisher import Publisher
from core.ready_jobs import decode, encode
from hookspecs import JOBS_TOPIC, Job, Message, new_id
from tests.gateway_kit import eventually


def job() -> Job:
    return Job(id=new_id(), destination="sink", action="live", event_id=new_id(), context={}, data={},
               created_at=datetime.now(UTC))


async def received(pubsub: MemoryPubSub) -> list[str]:
    """The job ids announced to group ``g`` so far (acknowledged)."""
    subscription = await pubsub.subscribe(JOBS_TOPIC, group="g")
    ids: list[str] = []
    feed = aiter(subscription)
    try:
        while True:
            delivery = await asyncio.wait_for(anext(feed), 0.5)
            ids += decode(delivery.message).job_ids
            await delivery.ack()
    except TimeoutError:
        return ids
    finally:
        await subscription.close()


async def test_a_job_whose_publish_failed_is_published_once_the_broker_is_back() -> None:
    pubsub = MemoryPubSub("memory://publisher-back")
    await pubsub.open()
    await (await pubsub.subscribe(JOBS_TOPIC, group="g")).close()  # the group gets what follows
    await pubsub.close()  # the broker is gone: publish raises PubSubUnavailable
    publisher = Publisher(pubsub)
    early = job()
    publisher.offer([early])
    await asyncio.sleep(0.3)  # tried again meanwhile, and failed
    assert publisher.waiting == 1
    await pubsub.open()
    later = job()
    publisher.offer([later])
    await eventually(lambda: asyncio.sleep(0, result=publisher.waiting == 0))
    assert await received(pubsub) == [early.id, later.id], "held job first, in commit order"
    await publisher.close()
    await pubsub.close()


async def test_a_job_held_longer_than_the_hold_is_left_to_the_schedule() -> None:
    pubsub = MemoryPubSub("memory://publisher-given-up")
    await pubsub.open()
    await (await pubsub.subscribe(JOBS_TOPIC, group="g")).close()
    await pubsub.close()
    publisher = Publisher(pubsub, hold_seconds=0.2)
    publisher.offer([job()])
    await eventually(lambda: asyncio.sleep(0, result=publisher.waiting == 0))  # given up after 0.2 s
    await pubsub.open()
    later = job()
    publisher.offer([later])
    await eventually(lambda: asyncio.sleep(0, result=publisher.waiting == 0))
    assert await received(pubsub) == [later.id]
    await publisher.close()
    await pubsub.close()


def test_a_message_of_a_gateway_before_event_ids_still_reads() -> None:
    message = encode([job()])[0]
    old = Message(orjson.dumps({k: v for k, v in orjson.loads(message.body).items() if k != "events"}),
                  message.attributes, message.key)
    ready = decode(old)
    assert ready.job_ids == decode(message).job_ids and ready.event_ids == ()
