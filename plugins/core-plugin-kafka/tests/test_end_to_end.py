"""Gateway and scheduler as separate processes (``core start gateway`` / ``core start
scheduler``) exchanging realtime jobs through Kafka, and going on while the brokers are down."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from confluent_kafka import Consumer, TopicPartition
from conftest import Cluster
from core.testing.processes import Deployment
from core.testing.pubsub import Inbox
from hookspecs import Message

from core_plugin_kafka.pubsub import KafkaPubSub

pytestmark = pytest.mark.slow

#: The recording app's subscription trigger: its consumer group (core.<source>.<trigger>) and topic.
FEED_GROUP, FEED_TOPIC = "core.feed.external", "orders.external"


def joined(pubsub: str, topic: str, group: str) -> bool:
    """True once ``group`` has its start offsets on ``topic``: a member subscribed."""
    parts = urlsplit(pubsub)
    query = dict(parse_qsl(parts.query))
    reader = Consumer({"bootstrap.servers": parts.netloc, "group.id": query["group_prefix"] + group})
    try:
        topic = query["topic_prefix"] + topic
        offsets = reader.committed([TopicPartition(topic, p) for p in range(4)], timeout=5)
        return all(tp.offset >= 0 for tp in offsets)
    finally:
        reader.close()


def deployment(directory: Path, pubsub: str, poll_seconds: float) -> Deployment:
    """The recording app on ``pubsub``, its realtime poll every ``poll_seconds``."""
    return Deployment(directory, pubsub=pubsub, settings={"scheduler": {"poll_seconds": poll_seconds}})


def start(deployment: Deployment, pubsub: str) -> None:
    """Scheduler (once in its consumer group), then gateway (once it reads its feed)."""
    deployment.start_apart(lambda: joined(pubsub, "core.jobs", "core.scheduler"),
                           "the scheduler to join its consumer group")
    deployment.wait_until(lambda: joined(pubsub, FEED_TOPIC, FEED_GROUP), "the gateway to read its feed")


def orders(count: int) -> list[dict[str, object]]:
    return [{"context": {}, "data": {"order": n}} for n in range(count)]


def test_realtime_jobs_go_from_the_gateway_process_to_the_scheduler_process(tmp_path: Path, kafka_url: str) -> None:
    # The poll of realtime actions runs once an hour here: only the broker can bring the jobs.
    with deployment(tmp_path, kafka_url, poll_seconds=3600) as running:
        start(running, kafka_url)
        sent = set(running.post("/webhooks/orders", *orders(20)))
        running.wait_until(lambda: set(running.loaded()) >= sent, "the scheduler to load every job through Kafka")


def test_while_the_brokers_are_down_the_gateway_answers_202_and_the_schedule_delivers(
    tmp_path: Path, make_url: Callable[..., str], private_cluster: Cluster
) -> None:
    pubsub = make_url(private_cluster.bootstrap, publish_timeout_ms=1500)
    with deployment(tmp_path, pubsub, poll_seconds=0.5) as running:
        start(running, pubsub)
        sent = set(running.post("/webhooks/orders", *orders(5)))
        running.wait_until(lambda: set(running.loaded()) >= sent, "the jobs sent before the outage")
        private_cluster.down()
        try:
            during = set(running.post("/webhooks/orders", *orders(10)))
            running.wait_until(lambda: set(running.loaded()) >= during, "the schedule to deliver the outage's jobs")
        finally:
            private_cluster.up()
        after = set(running.post("/webhooks/orders", *orders(5)))
        running.wait_until(lambda: set(running.loaded()) >= after, "the jobs sent after the brokers came back")
    assert set(running.loaded()) == sent | during | after


async def test_a_subscription_trigger_turns_records_into_events_and_dead_letters_the_bad_one(
    tmp_path: Path, make_url: Callable[..., str], bootstrap: str
) -> None:
    pubsub = make_url(bootstrap, max_redeliveries=1, redelivery_delay_ms=10)
    feed = KafkaPubSub(pubsub)
    await feed.open()
    inbox = Inbox(timeout=30.0, quiet=0.5)
    try:
        inbox.follow(await feed.subscribe(f"{FEED_TOPIC}.dlq", group="inspect"), "dlq")
        with deployment(tmp_path, pubsub, poll_seconds=3600) as running:
            start(running, pubsub)
            good = [Message(json.dumps({"data": {"order": n}}).encode()) for n in range(3)]
            await feed.publish(FEED_TOPIC, [*good, Message(b"not json", key="bad")])
            [(_, letter)] = await inbox.take(1)
            assert (letter.message.body, letter.message.key) == (b"not json", "bad")
            assert letter.message.attributes["core-dlq-group"] == feed.options.group(FEED_GROUP)
            await letter.ack()
            await asyncio.to_thread(running.wait_until, lambda: len(running.loaded()) >= 3,
                                    "the feed's events to be loaded")
        assert len(running.loaded()) == 3
    finally:
        await inbox.close()
        await feed.close()
