"""The Kafka pub/sub adapter: ``kafka://host:port,host:port?topic_prefix=...``.

One producer per adapter, one consumer per subscription (a consumer-group member). Topics
are created by the brokers on first use (``auto.create.topics.enable``); the adapter never
creates or deletes topics itself. See ``docs/kafka.md`` for the delivery semantics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hookspecs import Message, PubSubUnavailable

from core_plugin_kafka._options import KafkaOptions
from core_plugin_kafka._producer import AsyncProducer
from core_plugin_kafka._subscription import KafkaSubscription


class KafkaPubSub:
    """:class:`~hookspecs.PubSub` over a Kafka cluster, through confluent-kafka (librdkafka).

    :param url: ``kafka://``, ``kafka+ssl://`` or ``kafka+sasl://`` and the bootstrap list.
    :param options: the ``[options.kafka]`` table (the URL query overrides it).
    """

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.options = KafkaOptions.parse(url, options or {})
        self._producer: AsyncProducer | None = None
        self._subscriptions: set[KafkaSubscription] = set()

    def _require(self) -> AsyncProducer:
        if self._producer is None:
            raise PubSubUnavailable(f"kafka pubsub {self.options.bootstrap!r} is not open; call open() first")
        return self._producer

    async def open(self) -> None:
        """Start the producer and check that the cluster answers (else :class:`PubSubUnavailable`)."""
        if self._producer is not None:
            return
        producer = AsyncProducer(self.options.client, self.options.publish_timeout_ms)
        try:
            await producer.probe()
        except BaseException:
            await producer.close()
            raise
        self._producer = producer

    async def close(self) -> None:
        """Leave every group (committing what was acknowledged), then flush the producer."""
        for subscription in list(self._subscriptions):
            await subscription.close()
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.close()

    async def publish(self, topic: str, messages: Sequence[Message]) -> None:
        """Publish and wait for every broker acknowledgement (``acks=all``)."""
        producer = self._require()
        if messages:
            await producer.send(self.options.topic(topic), messages)

    async def subscribe(self, topic: str, *, group: str) -> KafkaSubscription:
        """Join ``group`` on ``topic``; returns once this member has its first assignment."""
        producer, name = self._require(), self.options.topic(topic)
        await producer.declare(name)
        subscription = KafkaSubscription(
            name, self.options.group(group), self.options, producer, self._subscriptions.discard
        )
        await subscription.start()
        self._subscriptions.add(subscription)
        return subscription
