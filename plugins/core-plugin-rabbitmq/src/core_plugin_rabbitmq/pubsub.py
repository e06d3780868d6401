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
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustConnection, DeliveryMode
from aio_pika.exceptions import ChannelPreconditionFailed
from hookspecs import ConfigError, Message, PubSubUnavailable

from core_plugin_rabbitmq._options import RabbitOptions
from core_plugin_rabbitmq._subscription import KEY_HEADER, UNAVAILABLE, RabbitSubscription

log = logging.getLogger("core.pubsub.rabbitmq")


def amqp_message(message: Message) -> aio_pika.Message:
    """A persistent AMQP message carrying a message's attributes and key as headers."""
    headers: dict[str, Any] = dict(message.attributes)
    if message.key is not None:
        headers[KEY_HEADER] = message.key
    return aio_pika.Message(message.body, headers=headers or None, delivery_mode=DeliveryMode.PERSISTENT)


class RabbitPubSub:
    """The RabbitMQ adapter: ``RabbitPubSub(url, options)`` (not connected yet)."""

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.options = RabbitOptions.parse(url, options or {})
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._open = False
        self._last_attempt = float("-inf")
        self._last_error = "not connected yet"
        self._subscriptions: set[RabbitSubscription] = set()

    def __repr__(self) -> str:
        return f"RabbitPubSub({self.options.safe_url()}, exchange={self.options.exchange!r})"

    async def open(self) -> None:
        """Connect and declare the exchange; :class:`PubSubUnavailable` if RabbitMQ is down.

        After a failed ``open`` the adapter stays usable: publish and subscribe try to connect
        again (at most once per ``reconnect_wait``) and raise :class:`PubSubUnavailable` until
        RabbitMQ answers.
        """
        self._open = True
        await self._connect()

    async def close(self) -> None:
        """Leave every subscription (its unacknowledged deliveries go back) and disconnect."""
        self._open = False
        for subscription in list(self._subscriptions):
            await subscription.close()
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            await connection.close()

    async def publish(self, topic: str, messages: Sequence[Message]) -> None:
        """Publish and wait for the broker's confirm of every message."""
        if not messages:
            return
        routing_key = self.options.routing_key(topic)
        exchange = await self._exchange_now()
        timeout = self.options.publish_timeout
        results = await asyncio.gather(
            *(exchange.publish(amqp_message(m), routing_key, timeout=timeout) for m in messages),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if not isinstance(failure, UNAVAILABLE):
                raise failure
        if failures:
            raise PubSubUnavailable(
                f"RabbitMQ did not confirm {len(failures)} of {len(messages)} messages "
                f"on {self.options.exchange!r}/{routing_key!r}: {failures[0]!r}"
            ) from failures[0]

    async def subscribe(self, topic: str, *, group: str) -> RabbitSubscription:
        """Join ``group`` on ``topic`` through its durable queue (declared and bound if missing)."""
        self.options.routing_key(topic)
        await self._exchange_now()
        assert self._connection is not None
        subscription = RabbitSubscription(
            self._connection, self.options, topic=topic, group=group, forget=self._subscriptions.discard,
        )
        try:
            await subscription.start()
        except ChannelPreconditionFailed as exc:
            await subscription.close()
            raise ConfigError(
                "[options.rabbitmq]", "max_deliveries", self.options.max_deliveries,
                f"the settings the queue {self.options.queue(topic, group)!r} was declared with "
                f"({exc}); delete that queue to declare it again with the new settings",
            ) from exc
        except UNAVAILABLE as exc:
            await subscription.close()
            raise PubSubUnavailable(f"RabbitMQ could not start a consumer on {topic!r}: {exc!r}") from exc
        self._subscriptions.add(subscription)
        return subscription

    async def _exchange_now(self) -> AbstractExchange:
        """The exchange if connected now; connects again after a failed ``open``."""
        if not self._open:
            raise PubSubUnavailable("the RabbitMQ adapter is closed; call open() first")
        if self._exchange is None:
            if time.monotonic() - self._last_attempt < self.options.reconnect_wait:
                raise PubSubUnavailable(f"RabbitMQ at {self.options.safe_url()} is unavailable: {self._last_error}")
            await self._connect()
        assert self._connection is not None and self._exchange is not None
        if not self._connection.connected.is_set():
            raise PubSubUnavailable(f"RabbitMQ connection lost ({self._last_error}); reconnecting")
        return self._exchange

    async def _connect(self) -> None:
        options = self.options
        self._last_attempt = time.monotonic()
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
        except UNAVAILABLE as exc:
            self._last_error = repr(exc)
            if connection is not None:
                await connection.close()
            raise PubSubUnavailable(f"RabbitMQ at {options.safe_url()} cannot be reached: {exc!r}") from exc
        connection.close_callbacks.add(self._on_lost)
        connection.reconnect_callbacks.add(self._on_reconnected)
        self._connection, self._exchange = connection, exchange

    def _on_lost(self, _connection: Any, exc: BaseException | None = None) -> None:
        if not self._open:  # our own close()
            return
        self._last_error = repr(exc)
        log.warning("RabbitMQ: connection to %s lost (%r); reconnecting", self.options.safe_url(), exc)

    def _on_reconnected(self, _connection: Any) -> None:
        log.warning("RabbitMQ: reconnected to %s", self.options.safe_url())
