"""RabbitMQ as the ``core`` pub/sub: a durable topic exchange, and a durable quorum queue
per (topic, consumer group) bound to it with the topic as routing key.

Publishing waits for the broker's publisher confirm of every message, so a message the broker
did not take raises :class:`~hookspecs.PubSubUnavailable` and the gateway falls back to the
schedule. aio-pika's robust connection reconnects by itself every ``reconnect_wait`` seconds
and restores the exchange, queues, bindings and consumers; while it is disconnected, publish
fails at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustConnection, DeliveryMode
from core.brokers import KEY_HEADER, BrokerPubSub
from hookspecs import Message

from core_plugin_rabbitmq._options import RabbitOptions
from core_plugin_rabbitmq._subscription import UNAVAILABLE, RabbitSubscription

#: The client: the robust connection and the exchange on its publisher-confirm channel.
Client = tuple[AbstractRobustConnection, AbstractExchange]


def amqp_message(message: Message) -> aio_pika.Message:
    """A persistent AMQP message carrying a message's attributes and key as headers."""
    headers: dict[str, Any] = dict(message.attributes)
    if message.key is not None:
        headers[KEY_HEADER] = message.key
    return aio_pika.Message(message.body, headers=headers or None, delivery_mode=DeliveryMode.PERSISTENT)


class RabbitPubSub(BrokerPubSub[Client, RabbitSubscription]):
    """The RabbitMQ adapter: ``RabbitPubSub(url, options)`` (not connected yet)."""

    broker: ClassVar[str] = "RabbitMQ"
    unavailable = UNAVAILABLE
    log = logging.getLogger("core.pubsub.rabbitmq")

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.options = RabbitOptions.parse(url, options or {})
        super().__init__(reconnect_wait=self.options.reconnect_wait, reconnect_max=self.options.reconnect_max)

    def __repr__(self) -> str:
        return f"RabbitPubSub({self.location}, exchange={self.options.exchange!r})"

    @property
    def location(self) -> str:
        return self.options.safe_url()

    def destination(self, topic: str) -> str:
        return self.options.routing_key(topic)

    def connected(self, client: Client) -> bool:
        return client[0].connected.is_set()

    async def connect(self) -> Client:
        options = self.options
        connection: AbstractRobustConnection | None = None
        try:
            connection = await asyncio.wait_for(aio_pika.connect_robust(
                options.url,
                ssl_context=options.ssl_context(),
                timeout=options.connect_timeout,
                reconnect_interval=options.reconnect_wait,
                fail_fast=True,
                client_properties={"connection_name": "core"},
            ), options.connect_timeout)
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(options.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        except BaseException:
            if connection is not None:
                await connection.close()
            raise
        connection.close_callbacks.add(lambda _connection, exc=None: self.lost(exc))
        connection.reconnect_callbacks.add(lambda _connection: self.restored())
        return connection, exchange

    async def disconnect(self, client: Client) -> None:
        await client[0].close()

    async def send(self, client: Client, destination: str, message: Message) -> None:
        await client[1].publish(amqp_message(message), destination, timeout=self.options.publish_timeout)

    def member(self, client: Client, topic: str, group: str) -> RabbitSubscription:
        return RabbitSubscription(self, client[0], topic=topic, group=group)
