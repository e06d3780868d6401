"""Gateway and scheduler as separate processes (``core start gateway`` / ``core start
scheduler``) exchanging realtime jobs through Kafka and going on while the brokers are down
(the kit's end-to-end suite), and a subscription trigger dead-lettering a bad record."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from confluent_kafka import Consumer, TopicPartition
from conftest import Cluster, close_consumer
from core.testing import FEED_GROUP, FEED_TOPIC, BrokerEndToEndSuite, Inbox, Outage
from hookspecs import Message

from core_plugin_kafka.pubsub import KafkaPubSub

pytestmark = pytest.mark.slow


class TestEndToEnd(BrokerEndToEndSuite):
    broker = "Kafka"

    @pytest.fixture
    def pubsub_url(self, kafka_url: str) -> str:
        return kafka_url

    @pytest.fixture
    def broker_outage(self, make_url: Callable[..., str], private_cluster: Cluster) -> Outage:
        """A cluster of this test's own, all its brokers down for the block."""

        @contextmanager
        def down() -> Iterator[None]:
            private_cluster.down()
            try:
                yield
            finally:
                private_cluster.up()

        return make_url(private_cluster.bootstrap, publish_timeout_ms=1500), down

    def group_exists(self, pubsub_url: str, topic: str, group: str) -> bool:
        """True once ``group`` has its start offsets on ``topic``: a member subscribed."""
        parts = urlsplit(pubsub_url)
        query = dict(parse_qsl(parts.query))
        reader = Consumer({"bootstrap.servers": parts.netloc, "group.id": query["group_prefix"] + group})
        try:
            topic = query["topic_prefix"] + topic
            offsets = reader.committed([TopicPartition(topic, p) for p in range(4)], timeout=5)
            return all(tp.offset >= 0 for tp in offsets)
        finally:
            close_consumer(reader)

    async def test_a_subscription_trigger_turns_records_into_events_and_dead_letters_the_bad_one(
        self, tmp_path: Path, make_url: Callable[..., str], bootstrap: str
    ) -> None:
        pubsub = make_url(bootstrap, max_redeliveries=1, redelivery_delay_ms=10)
        feed = KafkaPubSub(pubsub)
        await feed.open()
        inbox = Inbox(timeout=30.0, quiet=0.5)
        try:
            inbox.follow(await feed.subscribe(f"{FEED_TOPIC}.dlq", group="inspect"), "dlq")
            with self.deployment(tmp_path, pubsub, poll_seconds=3600) as running:
                self.start(running, pubsub)
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
