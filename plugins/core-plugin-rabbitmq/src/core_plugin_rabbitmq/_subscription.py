"""A consumer-group membership on RabbitMQ: a consumer on the group's quorum queue.

Each member has its own channel with ``prefetch`` unacknowledged messages at most, so the
members of a group share its queue. Settlement is the caller's: ``ack`` is ``basic.ack``,
``nack`` is ``basic.nack`` with requeue, and what a member holds when its channel closes (it
left, or its process died) goes back to the queue. The queue counts deliveries (quorum
queues' ``x-delivery-count``) and, past ``max_deliveries``, dead-letters the message to topic
``dead.<topic>`` through the same exchange; the queue of group ``dead-letters`` on that topic
is declared with the first subscription, so dead letters are kept from then on.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aio_pika
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, ChannelInvalidStateError, ChannelPreconditionFailed
from core.brokers import (
    DEAD_GROUP,
    DEAD_LETTER_GROUP,
    DEAD_LETTER_PREFIX,
    DEAD_REASON,
    DEAD_TOPIC,
    KEY_HEADER,
    BrokerDelivery,
    BrokerSubscription,
)
from hookspecs import ConfigError, Message

if TYPE_CHECKING:
    from core_plugin_rabbitmq.pubsub import RabbitPubSub

#: Headers the broker adds (delivery count, dead-letter history): not message attributes.
_BROKER_HEADERS = frozenset({"x-death", "x-delivery-count"})
_BROKER_PREFIXES = ("x-first-death-", "x-last-death-")
#: What a broken or missing connection raises in aio-pika / aiormq.
UNAVAILABLE = (*CONNECTION_EXCEPTIONS, asyncio.TimeoutError)


class RabbitDelivery(BrokerDelivery):
    """One received message; settle it once with :meth:`ack` or :meth:`nack`.

    A member that leaves closes its channel, and the broker takes back what it held."""

    __slots__ = ("incoming",)

    def __init__(self, incoming: AbstractIncomingMessage, subscription: RabbitSubscription) -> None:
        attributes = _attributes(incoming.headers or {}, subscription.options.exchange)
        key = attributes.pop(KEY_HEADER, None)
        super().__init__(subscription, Message(incoming.body, attributes, key))
        self.incoming = incoming

    @property
    def deliveries(self) -> int:
        """How many times the queue has delivered this message (1 the first time)."""
        count = (self.incoming.headers or {}).get("x-delivery-count", 0)
        return int(count) + 1 if isinstance(count, int) else 1

    async def _ack(self) -> None:
        await self.incoming.ack()

    async def _nack(self) -> None:
        """Redeliver; past ``max_deliveries`` deliveries the queue dead-letters it instead."""
        await self.incoming.nack(requeue=True)


class RabbitSubscription(BrokerSubscription[AbstractIncomingMessage]):
    """A member of consumer ``group`` on ``topic``; iterate it for :class:`RabbitDelivery`."""

    owner: RabbitPubSub

    def __init__(self, owner: RabbitPubSub, connection: AbstractRobustConnection, *, topic: str, group: str) -> None:
        super().__init__(owner, topic, group)
        self.options = owner.options
        self._connection = connection
        self._channel: AbstractRobustChannel | None = None

    async def start(self) -> None:
        """Open this member's channel, declare and bind the queues, and start consuming."""
        self._channel = channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self.options.prefetch)
        try:
            exchange = await channel.declare_exchange(
                self.options.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            if not self.topic.startswith(DEAD_LETTER_PREFIX):
                await self._declare(exchange, DEAD_LETTER_PREFIX + self.topic, DEAD_LETTER_GROUP)
            queue = await self._declare(exchange, self.topic, self.group)
        except ChannelPreconditionFailed as exc:
            raise ConfigError(
                "[options.rabbitmq]", "max_deliveries", self.options.max_deliveries,
                f"the settings the queue {self.options.queue(self.topic, self.group)!r} was declared with "
                f"({exc}); delete that queue to declare it again with the new settings",
            ) from exc
        await queue.consume(self.receive)

    async def leave(self) -> None:
        """Close the channel: the broker hands every unacknowledged delivery back."""
        if self._channel is not None:
            try:
                await self._channel.close()
            except UNAVAILABLE as exc:
                self.owner.log.debug("RabbitMQ: channel close failed while leaving: %r", exc)

    async def accept(self, raw: AbstractIncomingMessage) -> RabbitDelivery | None:
        if not _channel_open(raw):  # lost with its connection: the broker delivers it again
            return None
        return RabbitDelivery(raw, self)

    async def _declare(self, exchange: AbstractExchange, topic: str, group: str) -> AbstractQueue:
        assert self._channel is not None
        arguments: dict[str, Any] = {"x-queue-type": "quorum"}
        if self.options.max_deliveries and not topic.startswith(DEAD_LETTER_PREFIX):
            arguments.update({
                "x-delivery-limit": self.options.max_deliveries - 1,
                "x-dead-letter-exchange": self.options.exchange,
                "x-dead-letter-routing-key": DEAD_LETTER_PREFIX + topic,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            })
        queue = await self._channel.declare_queue(self.options.queue(topic, group), durable=True, arguments=arguments)
        await queue.bind(exchange, routing_key=topic)
        return queue


def _channel_open(incoming: AbstractIncomingMessage) -> bool:
    try:
        return not incoming.channel.is_closed
    except ChannelInvalidStateError:
        return False


def _attributes(headers: dict[str, Any], exchange: str) -> dict[str, str]:
    """String attributes from AMQP headers; the broker's ``x-death`` becomes ``Core-Dead-*``."""
    attributes = {
        k: v.decode() if isinstance(v, bytes) else str(v)
        for k, v in headers.items()
        if k not in _BROKER_HEADERS and not k.startswith(_BROKER_PREFIXES) and isinstance(v, str | bytes | int | float)
    }
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        death = deaths[0]
        keys = death.get("routing-keys") or [""]
        topic = keys[0].decode() if isinstance(keys[0], bytes) else str(keys[0])
        queue = str(death.get("queue", ""))
        attributes[DEAD_TOPIC] = topic
        attributes[DEAD_GROUP] = queue[len(f"{exchange}:{topic}:"):]
        attributes[DEAD_REASON] = str(death.get("reason", ""))
    return attributes
