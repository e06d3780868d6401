"""A consumer-group membership on NATS JetStream: a pull loop over a durable consumer.

The loop keeps up to ``batch`` messages requested from the consumer (JetStream's
``CONSUMER.MSG.NEXT`` pull requests, refilled when half are used), so a message is handed over
as soon as it is stored and a busy group still gets messages in batches. Settlement is the
caller's: ``ack`` acknowledges, ``nack`` asks for an immediate redelivery, and a delivery that
is never settled comes back after ``ack_wait``. Past ``max_deliveries`` deliveries a message is
dead-lettered: published on topic ``dead.<topic>`` with headers saying where it came from, and
terminated on its consumer. Dead-letter topics themselves redeliver without a limit.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from core.brokers import (
    DEAD_DELIVERIES,
    DEAD_GROUP,
    DEAD_LETTER_PREFIX,
    DEAD_TOPIC,
    KEY_HEADER,
    BrokerDelivery,
    BrokerSubscription,
)
from hookspecs import Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

if TYPE_CHECKING:
    from core_plugin_nats.pubsub import NatsPubSub

#: Lifetime of one pull request (the server answers 408 when it expires unfilled).
PULL_EXPIRES = 5.0
#: What a broken or missing connection raises in nats-py (and the server's API errors).
UNAVAILABLE = (NatsError, OSError, asyncio.TimeoutError)


class NatsDelivery(BrokerDelivery):
    """One received message; settle it once with :meth:`ack` or :meth:`nack`."""

    __slots__ = ("msg",)
    subscription: NatsSubscription

    def __init__(self, msg: Msg, subscription: NatsSubscription) -> None:
        attributes = dict(msg.headers or {})
        key = attributes.pop(KEY_HEADER, None)
        super().__init__(subscription, Message(msg.data, attributes, key))
        self.msg = msg

    @property
    def deliveries(self) -> int:
        """How many times JetStream has delivered this message to the group (1 the first time)."""
        return self.msg.metadata.num_delivered

    async def _ack(self) -> None:
        await self.msg.ack()

    async def _nack(self) -> None:
        """Redeliver now; past ``max_deliveries`` deliveries, dead-letter instead."""
        limit = self.subscription.max_deliveries
        if limit and self.deliveries >= limit:
            await self.subscription.dead_letter(self)
        else:
            await self.msg.nak()

    async def _release(self) -> None:
        await self.msg.nak()


class NatsSubscription(BrokerSubscription[Msg]):
    """A member of consumer ``group`` on ``topic``; iterate it for :class:`NatsDelivery`."""

    owner: NatsPubSub

    def __init__(self, owner: NatsPubSub, nc: Client, js: JetStreamContext, *, topic: str, group: str) -> None:
        super().__init__(owner, topic, group)
        self.options = owner.options
        self._nc = nc
        self._js = js
        self._inbox = nc.new_inbox()
        self._requested = 0
        self._sub: Subscription | None = None
        #: Deliveries before a dead letter (none for dead-letter topics themselves).
        self.max_deliveries = 0 if topic.startswith(DEAD_LETTER_PREFIX) else self.options.max_deliveries

    async def start(self) -> None:
        """Make sure the durable consumers exist; listen on this member's inbox, where
        JetStream answers its pull requests."""
        durable = await self.owner.ensure_consumers(self._js, self.topic, self.group)
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{self.options.stream}.{durable}"
        self._sub = await self._nc.subscribe(self._inbox, cb=self.receive)

    async def leave(self) -> None:
        """Stop pulling; what arrived and was not handed out yet goes back at once."""
        if self._sub is None:  # never started
            return
        try:
            await self._sub.unsubscribe()
        except UNAVAILABLE as exc:
            self.owner.log.debug("NATS: unsubscribe failed while closing: %r", exc)
        while not self.received.empty():
            msg = self.received.get_nowait()
            if msg is not None:
                await self.returned(msg)

    async def returned(self, raw: Msg) -> None:
        if not _status(raw):
            await NatsDelivery(raw, self).release()

    def resume(self) -> None:
        """The connection came back: pull requests made before were lost with it."""
        self._requested = 0
        self.received.put_nowait(None)

    async def next_raw(self) -> Msg | None:
        if self._requested <= self.options.batch // 2:
            await self._pull()
        try:
            return await asyncio.wait_for(self.received.get(), PULL_EXPIRES + 1)
        except TimeoutError:  # no answer to our pulls at all: they were lost, ask again
            self._requested = 0
            return None

    async def accept(self, raw: Msg) -> NatsDelivery | None:
        status = _status(raw)
        if status:
            self._on_status(raw, status)
            return None
        self._requested = max(0, self._requested - 1)
        delivery = NatsDelivery(raw, self)
        limit = self.max_deliveries
        if limit and delivery.deliveries > limit:  # redelivered after a crash or an ack_wait expiry
            delivery.settle()
            await self.dead_letter(delivery)
            return None
        return delivery

    async def dead_letter(self, delivery: NatsDelivery) -> None:
        """Publish ``delivery`` on ``dead.<topic>`` and terminate it; on failure, redeliver it."""
        msg = delivery.msg
        headers = {
            **(msg.headers or {}),
            DEAD_TOPIC: self.topic, DEAD_GROUP: self.group, DEAD_DELIVERIES: str(delivery.deliveries),
        }
        subject = self.options.dead_letter_subject(self.topic)
        try:
            await self._js.publish(subject, msg.data, timeout=self.options.publish_timeout, headers=headers)
        except UNAVAILABLE as exc:
            self.owner.log.warning("NATS: dead letter for %r not stored (%r); redelivering it instead", self.topic, exc)
            await self.settled(msg.nak(), "nak")
            return
        self.owner.log.warning(
            "NATS: message on %r dead-lettered to %r after %d deliveries to group %r",
            self.topic, subject, delivery.deliveries, self.group,
        )
        await self.settled(msg.term(), "term")

    async def _pull(self) -> None:
        if not self._nc.is_connected:
            return
        want = self.options.batch - self._requested
        request = {"batch": want, "expires": int(PULL_EXPIRES * 1e9)}
        try:
            await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)
        except UNAVAILABLE as exc:
            self.owner.log.debug("NATS: pull request not sent: %r", exc)
            return
        self._requested += want

    def _on_status(self, msg: Msg, status: str) -> None:
        if status in ("404", "408", "409"):  # a pull request ended: it will bring no more
            pending = (msg.headers or {}).get("Nats-Pending-Messages")
            self._requested = max(0, self._requested - int(pending)) if pending else 0
            if status == "409":
                self.owner.log.debug("NATS: pull request ended: %s", (msg.headers or {}).get("Description"))


def _status(msg: Msg) -> str | None:
    """The status code of a JetStream control message (``None`` for a real message)."""
    if msg.reply or not msg.headers:
        return None
    return msg.headers.get("Status")
