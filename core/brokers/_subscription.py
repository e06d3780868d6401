"""A consumer-group membership and its deliveries, the same way on every broker.

:class:`BrokerSubscription` turns what the SDK hands over (raw messages, put on
:attr:`~BrokerSubscription.received` by an SDK callback or a thread) into deliveries, keeps the
unsettled ones, and on :meth:`~BrokerSubscription.close` (once) leaves the group and gives back
what it still holds. :class:`BrokerDelivery` is settled exactly once: a second ``ack`` or
``nack`` does nothing, and a settlement the broker cannot receive any more (its connection is
gone) is logged, not raised: the broker delivers the message again, at least once.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from core.brokers._conventions import DEAD_DELIVERIES, DEAD_GROUP, DEAD_TOPIC
from hookspecs import Message, PubSubUnavailable

if TYPE_CHECKING:
    from core.brokers._pubsub import BrokerPubSub

RawT = TypeVar("RawT")


class BrokerDelivery(ABC):
    """One received message; settle it once with :meth:`ack` or :meth:`nack`."""

    __slots__ = ("_settled", "message", "subscription")

    def __init__(self, subscription: BrokerSubscription[Any], message: Message) -> None:
        self.subscription = subscription
        self.message = message
        self._settled = False

    @property
    def deliveries(self) -> int:
        """How many times the group has received this message (1 the first time)."""
        return 1

    async def ack(self) -> None:
        """The message is handled: the group never receives it again."""
        if self.settle():
            try:
                await self._ack()
            except self.subscription.owner.unavailable as exc:
                self.subscription.not_sent("ack", exc)

    async def nack(self) -> None:
        """The message was not handled: the group receives it again (or its dead letter)."""
        if self.settle():
            try:
                await self._nack()
            except self.subscription.owner.unavailable as exc:
                self.subscription.not_sent("nack", exc)

    async def release(self) -> None:
        """Give an unsettled delivery back to the group (its member leaves)."""
        if self.settle():
            try:
                await self._release()
            except self.subscription.owner.unavailable as exc:
                self.subscription.not_sent("release", exc)

    def settle(self) -> bool:
        """Mark settled; ``False`` if it already was (then do nothing more)."""
        if self._settled:
            return False
        self._settled = True
        self.subscription.unsettled.discard(self)
        return True

    @abstractmethod
    async def _ack(self) -> None:
        """Tell the broker the message is handled."""

    @abstractmethod
    async def _nack(self) -> None:
        """Tell the broker to deliver the message again."""

    async def _release(self) -> None:  # noqa: B027 - most brokers take back what a leaving member held
        """Tell the broker to deliver the message to another member now."""


class BrokerSubscription(ABC, Generic[RawT]):
    """A member of ``group`` on ``topic``; iterate it for deliveries, close it to leave.

    A subclass supplies :meth:`accept` (a raw message into a delivery, or ``None`` to pass it
    over) and :meth:`leave`; it may override :meth:`start`, :meth:`next_raw` (to ask the
    broker for more before waiting), :meth:`returned` and :meth:`resume`.

    :cvar not_settled: what the SDK raises when the broker refuses a settlement (an expired
        handle): logged like a lost connection, since the broker delivers the message again.
    """

    not_settled: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(self, owner: BrokerPubSub[Any, Any], topic: str, group: str) -> None:
        self.owner = owner
        self.topic = topic
        self.group = group
        #: Deliveries handed out and not settled yet.
        self.unsettled: set[BrokerDelivery] = set()
        #: Raw messages from the SDK; ``None`` wakes the iterator (to look at :attr:`closed`).
        self.received: asyncio.Queue[RawT | None] = asyncio.Queue()
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether this member has left (or is leaving) its group."""
        return self._closed

    async def start(self) -> None:
        """Join the group at the broker (declare what is missing, start consuming)."""

    @abstractmethod
    async def accept(self, raw: RawT) -> BrokerDelivery | None:
        """The delivery of ``raw``, or ``None`` if it is not one (a control message, a message
        lost with its channel, one dead-lettered on arrival)."""

    @abstractmethod
    async def leave(self) -> None:
        """Stop consuming at the broker (unsettled deliveries are released after)."""

    async def next_raw(self) -> RawT | None:
        """The next raw message, or ``None`` to look at :attr:`closed` again."""
        return await self.received.get()

    async def returned(self, raw: RawT) -> None:
        """``raw`` arrived while leaving: give it back if the broker needs telling."""

    def resume(self) -> None:
        """The SDK reconnected: what was asked of the broker before may have been lost."""

    async def receive(self, raw: RawT) -> None:
        """Hand a raw message over (the SDK's message callback, on the event loop)."""
        self.received.put_nowait(raw)

    def __aiter__(self) -> AsyncIterator[BrokerDelivery]:
        return self._deliveries()

    async def _deliveries(self) -> AsyncIterator[BrokerDelivery]:
        while not self._closed:
            raw = await self.next_raw()
            if raw is None:
                continue
            if self.closed:  # it arrived while leaving
                await self.returned(raw)
                continue
            delivery = await self.accept(raw)
            if delivery is not None:
                self.unsettled.add(delivery)
                yield delivery

    async def close(self) -> None:
        """Leave the group (once): stop consuming, then give back every unsettled delivery."""
        if self._closed:
            return
        self._closed = True
        self.owner.subscriptions.discard(self)
        self.received.put_nowait(None)
        await self.leave()
        for delivery in list(self.unsettled):
            await delivery.release()

    async def settled(self, settlement: Awaitable[Any], what: str) -> None:
        """Await ``settlement``; if the connection is gone or the broker refused it
        (:attr:`not_settled`), log it: the message comes again."""
        try:
            await settlement
        except (*self.owner.unavailable, *self.not_settled) as exc:
            self.not_sent(what, exc)

    async def publish_dead_letter(self, delivery: BrokerDelivery, topic: str) -> bool:
        """Publish ``delivery``'s message on the dead-letter ``topic`` through the owner, with
        the ``DEAD_*`` headers; ``False`` (logged) when it could not be stored: redeliver it."""
        message = delivery.message
        attributes = {**message.attributes, DEAD_TOPIC: self.topic, DEAD_GROUP: self.group,
                      DEAD_DELIVERIES: str(delivery.deliveries)}
        try:
            await self.owner.publish(topic, [Message(message.body, attributes, message.key)])
        except PubSubUnavailable as exc:
            self.owner.log.warning("%s: dead letter for %r not stored (%r); redelivering it",
                                   self.owner.broker, self.topic, exc)
            return False
        self.owner.log.warning("%s: message on %r dead-lettered to %r after %d deliveries to group %r",
                               self.owner.broker, self.topic, topic, delivery.deliveries, self.group)
        return True

    def not_sent(self, what: str, exc: BaseException) -> None:
        """Log a settlement lost with the connection (the broker delivers the message again)."""
        self.owner.log.warning(
            "%s: %s of a delivery on %r not sent (%r); it will come again", self.owner.broker, what, self.topic, exc
        )
