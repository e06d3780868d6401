"""A consumer-group membership on Service Bus: a peek-lock receiver on the group's
subscription, the member renewing the locks of what it holds, and the forwarding of the
subscription's dead-letter sub-queue to topic ``dead.<topic>``.

A member receives only while it holds fewer than ``max_messages`` unsettled messages, so a busy
member never holds back its group; with ``prefetch = 0`` (the default) nothing is locked for it
that it has not asked for. ``ack()`` completes the message, ``nack()`` abandons it (Service Bus
counts the delivery and delivers it again); on its ``max_deliveries``-th delivery ``nack()``
dead-letters it instead, into the subscription's ``$DeadLetterQueue``. A member of a group with
dead letters also reads that sub-queue (where Service Bus itself puts messages past the
entity's ``MaxDeliveryCount``, e.g. after locks expired) and publishes each on ``dead.<topic>``
with attributes saying where it came from, then completes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from azure.core import exceptions as core_errors
from azure.servicebus import ServiceBusReceivedMessage, ServiceBusReceiveMode, ServiceBusSubQueue
from azure.servicebus import exceptions as sb
from azure.servicebus.aio import ServiceBusReceiver
from core.brokers import (
    DEAD_DELIVERIES,
    DEAD_GROUP,
    DEAD_LETTER_PREFIX,
    DEAD_REASON,
    DEAD_TOPIC,
    KEY_HEADER,
    Backoff,
    BrokerDelivery,
    BrokerSubscription,
)
from hookspecs import Message, PubSubUnavailable

from core_plugin_azure._options import RECEIVE_WAIT

if TYPE_CHECKING:
    from core_plugin_azure.pubsub import AzurePubSub, Client

#: What the SDK raises when Service Bus cannot be reached, refused the credentials, or did not
#: answer in time: "try later", never a bug.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    sb.ServiceBusConnectionError, sb.ServiceBusCommunicationError, sb.OperationTimeoutError,
    sb.ServiceBusServerBusyError, sb.ServiceBusAuthenticationError, sb.ServiceBusAuthorizationError,
    sb.MessagingEntityNotFoundError, sb.MessagingEntityDisabledError,
    core_errors.ServiceRequestError, core_errors.ServiceResponseError, TimeoutError, OSError,
)
#: What a settlement or a lock renewal may meet besides: the lock lost, the message settled.
NOT_SETTLED: tuple[type[BaseException], ...] = (
    sb.ServiceBusError, sb.MessageAlreadySettled, ValueError, RuntimeError, *UNAVAILABLE,
)

#: What a receive call may meet (the receiver is opened again then).
#: (The SDK may also raise an AttributeError from a handler that closed under a receive call,
#: and turn a cancellation into a ServiceBusError: loops check :meth:`leaving` after each.)
NOT_RECEIVED: tuple[type[BaseException], ...] = (sb.ServiceBusError, AttributeError, *UNAVAILABLE)
#: What forwarding a dead letter may meet (tried again later).
NOT_FORWARDED: tuple[type[BaseException], ...] = (PubSubUnavailable, *NOT_RECEIVED)
#: The reason the adapter gives when it dead-letters (Service Bus's own: MaxDeliveryCountExceeded).
MAX_DELIVERIES_REASON = "MaxDeliveriesExceeded"
#: The longest a leaving member waits for its receivers to close.
LEAVE_SECONDS = 10.0
#: How often a member looks for locks to renew.
RENEW_EVERY = 0.5
#: How long a receive call goes on collecting after its first message (the SDK's default is
#: 0.2 s, which a realtime message would wait out whenever fewer than asked for are there).
FURTHER_PULL = 0.01
#: How long one socket read of a receiver waits (the SDK's default, 0.2 s, is also how long a
#: receive call may go on after its last message): short, so that messages are handed over
#: within a few milliseconds.
SOCKET_TIMEOUT = 0.02

#: A raw message: the receiver that got it (it settles it) and the SDK's message.
Raw = tuple[ServiceBusReceiver, ServiceBusReceivedMessage]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)


def body_of(message: ServiceBusReceivedMessage) -> bytes:
    """The message body as bytes (Service Bus data sections joined)."""
    body = message.body
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return b"".join(bytes(part) for part in body)


def properties_of(message: ServiceBusReceivedMessage) -> dict[str, str]:
    """The application properties as strings."""
    return {_text(k): _text(v) for k, v in (message.application_properties or {}).items()}


class AzureDelivery(BrokerDelivery):
    """One received, locked message; settle it once with :meth:`ack` or :meth:`nack`."""

    __slots__ = ("raw", "receiver")
    subscription: AzureSubscription

    def __init__(self, raw: Raw, subscription: AzureSubscription) -> None:
        self.receiver, self.raw = raw
        attributes = properties_of(self.raw)
        key = attributes.pop(KEY_HEADER, None)
        super().__init__(subscription, Message(body_of(self.raw), attributes, key))

    @property
    def deliveries(self) -> int:
        """How many times the group has received this message (1 the first time): Service
        Bus's delivery count, the earlier deliveries, plus this one."""
        return (self.raw.delivery_count or 0) + 1

    def settle(self) -> bool:
        if not super().settle():
            return False
        self.subscription.done((self.receiver, self.raw))
        return True

    async def _ack(self) -> None:
        await self.subscription.settled_raw(self.receiver.complete_message(self.raw), "complete")

    async def _nack(self) -> None:
        """Deliver again (abandon); on the ``max_deliveries``-th delivery, dead-letter instead."""
        limit = self.subscription.max_deliveries
        if limit and self.deliveries >= limit:
            await self.subscription.dead_letter((self.receiver, self.raw), self.deliveries)
        else:
            await self.subscription.settled_raw(self.receiver.abandon_message(self.raw), "abandon")

    async def _release(self) -> None:
        await self.subscription.settled_raw(self.receiver.abandon_message(self.raw), "abandon")


class AzureSubscription(BrokerSubscription[Raw]):
    """A member of ``group`` on ``topic``: a peek-lock receiver on the group's subscription."""

    def __init__(self, owner: AzurePubSub, client: Client, topic: str, group: str) -> None:
        super().__init__(owner, topic, group)
        self.owner: AzurePubSub = owner
        self.client = client
        self.options = owner.options
        self.topic_name = self.options.topic_name(topic)
        self.subscription_name = self.options.subscription_name(group)
        #: Dead-letter topics redeliver without a limit, and have no dead letters of their own.
        self.dead_topic = topic.startswith(DEAD_LETTER_PREFIX)
        self.max_deliveries = 0 if self.dead_topic else self.options.max_deliveries
        #: Locked messages not settled yet (handed out or waiting), by lock token: raw, first
        #: seen, the lock's first span in seconds.
        self.held: dict[Any, tuple[Raw, float, float]] = {}
        self.room = asyncio.Event()
        self.room.set()
        self._receiver: ServiceBusReceiver | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- joining and leaving -----------------------------------------------------------------

    async def start(self) -> None:
        """Make the subscriptions needed (this group's, and the dead-letter group's on
        ``dead.<topic>`` so its dead letters are kept from now on), open the receiver, start
        receiving, renewing locks and forwarding dead letters."""
        await self.owner.ensure_subscription(self.client, self.topic, self.group, attaching=True)
        ensured = [] if self.dead_topic else [self.owner.ensure_subscription(
            self.client, self.options.dead_letter_topic(self.topic), self.owner.dead_letter_group)]
        results = await asyncio.gather(self.open_receiver(), *ensured, return_exceptions=True)
        opened = results[0]
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            if isinstance(opened, ServiceBusReceiver):
                await _close(opened)
            raise failure
        assert isinstance(opened, ServiceBusReceiver)
        self._receiver = opened
        self._tasks = [asyncio.create_task(self._pull(), name=f"azure pull {self.topic_name}/{self.subscription_name}"),
                       asyncio.create_task(self._renew(), name=f"azure renew {self.subscription_name}")]
        if self.max_deliveries:
            self._tasks.append(asyncio.create_task(self._forward(), name=f"azure dead {self.subscription_name}"))

    async def open_receiver(self, sub_queue: ServiceBusSubQueue | None = None) -> ServiceBusReceiver:
        """A peek-lock receiver on this group's subscription (or its sub-queue), opened."""
        receiver = self.client.bus.get_subscription_receiver(
            self.topic_name, self.subscription_name, receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
            prefetch_count=0 if sub_queue else self.options.prefetch, sub_queue=sub_queue,
            socket_timeout=SOCKET_TIMEOUT,
        )
        try:
            await asyncio.wait_for(receiver.__aenter__(), self.options.open_timeout)
        except BaseException:
            await _close(receiver)
            raise
        receiver._further_pull_receive_timeout = FURTHER_PULL  # the SDK's only knob for it
        return receiver

    async def leave(self) -> None:
        """Stop receiving; give back what is held (abandoned: delivered again at once), then
        close the receivers."""
        self.room.set()
        pulling, others = (self._tasks[0], self._tasks[1:]) if self._tasks else (None, [])
        for task in self._tasks:
            task.cancel()
        if pulling is not None:  # the others (the dead-letter forwarder) close while this one gives back
            await asyncio.gather(pulling, return_exceptions=True)
        for delivery in list(self.unsettled):
            await delivery.release()
        while not self.received.empty():
            raw = self.received.get_nowait()
            if raw is not None:
                await self.returned(raw)
        receiver, self._receiver = self._receiver, None
        closing = asyncio.gather(*others, *([_close(receiver)] if receiver else []), return_exceptions=True)
        try:
            await asyncio.wait_for(closing, LEAVE_SECONDS)
        except TimeoutError:  # an SDK call that ignored its cancellation: leave it behind
            self.owner.log.warning("Azure Service Bus: member of %r on %r left without closing cleanly",
                                   self.group, self.topic)
        self._tasks = []

    async def returned(self, raw: Raw) -> None:
        self.done(raw)
        receiver, message = raw
        await self.settled_raw(receiver.abandon_message(message), "abandon")

    def resume(self) -> None:
        """The adapter's sending came back: the receive loop reconnects by itself."""
        self.room.set()

    # -- receiving ---------------------------------------------------------------------------

    async def accept(self, raw: Raw) -> AzureDelivery | None:
        delivery = AzureDelivery(raw, self)
        if self.max_deliveries and delivery.deliveries > self.max_deliveries:  # its last lock expired
            delivery.settle()
            await self.dead_letter(raw, delivery.deliveries)
            return None
        return delivery

    def leaving(self) -> bool:
        """Whether the member has begun to leave (read again after an ``await``)."""
        return self.closed

    def done(self, raw: Raw) -> None:
        """``raw`` is settled (or being settled): it no longer takes room or needs its lock."""
        self.held.pop(raw[1].lock_token, None)
        self.room.set()

    async def _pull(self) -> None:
        """Receive while there is room; after a failure, open a new receiver (throttled)."""
        backoff = Backoff(self.options.reconnect_wait, self.options.reconnect_max)
        failing = False
        while not self.closed:
            room = self.options.max_messages - len(self.held)
            if room <= 0:
                self.room.clear()
                await self.room.wait()
                continue
            try:
                if self._receiver is None:
                    self._receiver = await self.open_receiver()
                receiver = self._receiver
                wait = RECEIVE_WAIT + self.options.open_timeout
                batch = await asyncio.wait_for(receiver.receive_messages(
                    max_message_count=min(room, self.options.receive_batch), max_wait_time=RECEIVE_WAIT), wait)
            except NOT_RECEIVED as exc:
                if self.leaving():
                    return
                if not failing:
                    self.owner.log.warning("Azure Service Bus: receiving on %s/%s failed (%r); reconnecting",
                                           self.topic_name, self.subscription_name, exc)
                failing = True
                broken, self._receiver = self._receiver, None
                if broken is not None:
                    await _close(broken)
                backoff.failed()
                while not backoff.ready() and not self.closed:
                    await asyncio.sleep(0.05)
                continue
            if failing:
                self.owner.log.warning("Azure Service Bus: receiving on %s/%s again", self.topic_name,
                                       self.subscription_name)
                failing = False
            backoff.reset()
            now = time.monotonic()
            for message in batch:
                until = message.locked_until_utc
                span = max(1.0, until.timestamp() - time.time()) if until else 30.0
                self.held[message.lock_token] = ((receiver, message), now, span)
                self.received.put_nowait((receiver, message))

    async def _renew(self) -> None:
        """Renew the lock of every held message past half its span, for ``max_lock_renewal``."""
        limit = self.options.max_lock_renewal
        if not limit:
            return
        while not self.leaving():
            await asyncio.sleep(RENEW_EVERY)
            now, moment = time.monotonic(), time.time()
            due = []
            for (receiver, message), seen, span in list(self.held.values()):
                until = message.locked_until_utc
                if until is None or now - seen > limit or message._settled:  # no public flag
                    continue
                if until.timestamp() - moment < span / 2:
                    due.append(self.settled_raw(
                        receiver.renew_message_lock(message, timeout=self.options.publish_timeout), "lock renewal"))
            if due:
                await asyncio.gather(*due)

    async def settled_raw(self, settlement: Awaitable[Any], what: str) -> None:
        """Await a settlement or renewal (bounded); if it fails, log it: the message comes again."""
        try:
            await asyncio.wait_for(settlement, self.options.publish_timeout + 1)
        except NOT_SETTLED as exc:
            self.not_sent(what, exc)

    # -- dead letters ------------------------------------------------------------------------

    async def dead_letter(self, raw: Raw, deliveries: int) -> None:
        """Move ``raw`` to the subscription's dead-letter sub-queue (forwarded from there)."""
        receiver, message = raw
        self.done(raw)
        self.owner.log.warning("Azure Service Bus: message on %r dead-lettered after %d deliveries to group %r",
                               self.topic, deliveries, self.group)
        await self.settled_raw(receiver.dead_letter_message(
            message, reason=MAX_DELIVERIES_REASON,
            error_description=f"nacked on delivery {deliveries} of max_deliveries={self.max_deliveries}",
        ), "dead-letter")

    async def _forward(self) -> None:
        """Publish what lands in the dead-letter sub-queue on ``dead.<topic>``, then complete it."""
        dead = self.options.dead_letter_topic(self.topic)
        backoff = Backoff(self.options.reconnect_wait, self.options.reconnect_max)
        receiver: ServiceBusReceiver | None = None
        try:
            while not self.leaving():
                try:
                    if receiver is None:
                        receiver = await self.open_receiver(ServiceBusSubQueue.DEAD_LETTER)
                    wait = RECEIVE_WAIT + self.options.open_timeout
                    batch = await asyncio.wait_for(receiver.receive_messages(
                        max_message_count=self.options.receive_batch, max_wait_time=RECEIVE_WAIT), wait)
                    for message in batch:
                        await self._forward_one(receiver, message, dead)
                    backoff.reset()
                except NOT_FORWARDED as exc:
                    if self.leaving():
                        return
                    self.owner.log.debug("Azure Service Bus: dead letters of %s not forwarded yet (%r)",
                                         self.subscription_name, exc)
                    broken, receiver = receiver, None
                    if broken is not None:
                        await _close(broken)
                    backoff.failed()
                    while not backoff.ready() and not self.leaving():
                        await asyncio.sleep(0.05)
        finally:
            if receiver is not None:
                await _close(receiver)

    async def _forward_one(self, receiver: ServiceBusReceiver, message: ServiceBusReceivedMessage, dead: str) -> None:
        attributes = properties_of(message)
        key = attributes.pop(KEY_HEADER, None)
        reason = attributes.pop("DeadLetterReason", "") or message.dead_letter_reason or ""
        attributes.pop("DeadLetterErrorDescription", None)
        count = message.delivery_count or 0
        deliveries = count + 1 if reason == MAX_DELIVERIES_REASON else max(count, 1)
        attributes.update({DEAD_TOPIC: self.topic, DEAD_GROUP: self.group, DEAD_DELIVERIES: str(deliveries),
                           DEAD_REASON: reason})
        try:
            await self.owner.publish(dead, [Message(body_of(message), attributes, key)])
        except PubSubUnavailable:
            await self.settled_raw(receiver.abandon_message(message), "abandon")
            raise
        await self.settled_raw(receiver.complete_message(message), "complete")


async def _close(receiver: ServiceBusReceiver) -> None:
    """Close ``receiver``, bounded, whatever state it is in."""
    try:
        await asyncio.wait_for(receiver.close(), 5.0)
    except NOT_SETTLED:  # closing must not fail the caller
        pass
