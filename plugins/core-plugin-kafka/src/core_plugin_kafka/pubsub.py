"""The Kafka pub/sub adapter: ``kafka://host:port,host:port?topic_prefix=...``.

One producer per adapter, one consumer per subscription (a consumer-group member). Topics
are created by the brokers on first use (``auto.create.topics.enable``); the adapter never
creates or deletes topics itself. See ``docs/kafka.md`` for the delivery semantics.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import confluent_kafka
from core.brokers import BrokerPubSub
from hookspecs import Message

from core_plugin_kafka._options import KafkaOptions
from core_plugin_kafka._producer import AsyncProducer
from core_plugin_kafka._subscription import KafkaSubscription


class KafkaPubSub(BrokerPubSub[AsyncProducer, KafkaSubscription]):
    """:class:`~hookspecs.PubSub` over a Kafka cluster, through confluent-kafka (librdkafka).

    librdkafka reconnects by itself; the base connects again (throttled) only when ``open``
    found no broker.

    :param url: ``kafka://``, ``kafka+ssl://`` or ``kafka+sasl://`` and the bootstrap list.
    :param options: the ``[options.kafka]`` table (the URL query overrides it).
    """

    broker: ClassVar[str] = "Kafka"
    unavailable = (confluent_kafka.KafkaException,)
    log = logging.getLogger("core_plugin_kafka")

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.options = KafkaOptions.parse(url, options or {})
        super().__init__(reconnect_wait=self.options.reconnect_wait, reconnect_max=self.options.reconnect_max)

    @property
    def location(self) -> str:
        return self.options.bootstrap

    def destination(self, topic: str) -> str:
        return self.options.topic(topic)

    async def connect(self) -> AsyncProducer:
        """Start the producer and check that the cluster answers."""
        producer = AsyncProducer(self.options.client, self.options.publish_timeout_ms)
        try:
            await producer.probe()
        except BaseException:
            await producer.close()
            raise
        return producer

    async def disconnect(self, client: AsyncProducer) -> None:
        await client.close()

    async def send_all(self, client: AsyncProducer, destination: str, messages: Sequence[Message]) -> list[object]:
        """Publish and wait for every broker acknowledgement (``acks=all``)."""
        return await client.send(destination, messages)

    async def send(self, client: AsyncProducer, destination: str, message: Message) -> None:
        for outcome in await client.send(destination, [message]):
            if isinstance(outcome, BaseException):
                raise outcome

    def member(self, client: AsyncProducer, topic: str, group: str) -> KafkaSubscription:
        return KafkaSubscription(self, client, topic=self.options.topic(topic), group=self.options.group(group))
