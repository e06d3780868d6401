"""A consumer-group membership on Google Pub/Sub: synchronous pulls on the group's
subscription (the asyncio gRPC client, no thread), the adapter extending ack deadlines.

Why pulls rather than the SDK's StreamingPull subscriber: at-least-once with prompt handover.
A streaming server pushes messages into a member's stream as it likes; when the member leaves,
what was pushed into the closing stream (the official emulator goes on pushing into a stream
for a while after it closed) comes back only after its ack deadline. A member that pulls holds
exactly what it asked for, asks only while it has room (``max_messages`` unsettled), so a busy
member never holds back its group, and gives everything back at once when it leaves. A pull
waits on the server until messages come (a long poll), so delivery is still prompt.

While a delivery is unsettled its ack deadline is extended every half deadline. ``ack()`` and
``nack()`` (the deadline set to 0: Pub/Sub delivers it again at once) are sent in batches, one
call at a time carrying all that came meanwhile. Past ``max_deliveries`` deliveries (Pub/Sub's
delivery attempt count, kept because the subscription has a dead-letter policy) the adapter
publishes the message on topic ``dead.<topic>`` with attributes saying where it came from,
and acknowledges it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import grpc
from core.brokers import (
    DEAD_DELIVERIES,
    DEAD_GROUP,
    DEAD_LETTER_PREFIX,
    DEAD_TOPIC,
    KEY_HEADER,
    BrokerDelivery,
    BrokerSubscription,
    Settlements,
)
from google.api_core import exceptions as api
from google.auth import exceptions as auth
from hookspecs import Message, PubSubUnavailable

if TYPE_CHECKING:
    from core_plugin_google.pubsub import Client, GooglePubSub

#: What the SDK raises when Pub/Sub cannot be reached or did not answer in time.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    api.ServiceUnavailable, api.DeadlineExceeded, api.GatewayTimeout, api.Aborted, api.InternalServerError,
    api.Unknown, api.RetryError, TimeoutError, grpc.FutureTimeoutError, auth.TransportError, auth.RefreshError,
)
#: What a settlement may meet besides: the subscription gone, the message's ack ID expired.
_NOT_SETTLED: tuple[type[BaseException], ...] = (api.GoogleAPICallError, *UNAVAILABLE)
#: What a pull may meet: the service down, or the subscription gone (made again then).
_NOT_PULLED: tuple[type[BaseException], ...] = (api.NotFound, *UNAVAILABLE)
#: What making the subscription again may meet.
_NOT_MADE: tuple[type[BaseException], ...] = (PubSubUnavailable, *UNAVAILABLE)

#: What Pub/Sub's own dead-letter forwarding adds (when a message's last delivery expired).
_FORWARDED_FROM = "CloudPubSubDeadLetterSourceSubscription"
_FORWARDED_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
#: Attribute names the SDK's ``publish(topic, data, ordering_key, retry, timeout, **attributes)``
#: takes for its own arguments travel with this prefix.
_ESCAPE = "Core-Attribute-"
_RESERVED = frozenset({"self", "topic", "data", "ordering_key", "retry", "timeout"})
#: Seconds one pull may wait on the server for messages (it answers empty a little before).
#: Short, because a leaving member waits for its last pull to come back rather than cancel
#: it: the official emulator does not notice a cancelled pull and would hand messages to it,
#: back only after their ack deadline.
PULL_SECONDS = 2.0
#: Most acknowledgement IDs in one call.
_CHUNK = 1000


def escaped(attributes: Mapping[str, str]) -> dict[str, str]:
    """``attributes`` fit for keyword arguments of the SDK's ``publish``."""
    return {(_ESCAPE + k if k in _RESERVED or k.startswith(_ESCAPE) else k): v for k, v in attributes.items()}


def unescaped(attributes: Mapping[str, str]) -> dict[str, str]:
    """The attributes :func:`escaped` was given."""
    return {k.removeprefix(_ESCAPE): v for k, v in attributes.items()}


class GoogleDelivery(BrokerDelivery):
    """One received message; settle it once with :meth:`ack` or :meth:`nack`."""

    __slots__ = ("ack_id", "attempt")
    subscription: GoogleSubscription

    def __init__(self, received: Any, subscription: GoogleSubscription) -> None:
        attributes = unescaped(received.message.attributes)
        key = attributes.pop(KEY_HEADER, None)
        if _FORWARDED_FROM in attributes and DEAD_TOPIC not in attributes:  # Pub/Sub dead-lettered it itself
            attributes[DEAD_TOPIC] = subscription.topic.removeprefix(DEAD_LETTER_PREFIX)
            attributes[DEAD_GROUP] = attributes[_FORWARDED_FROM]  # the subscription ID: the best there is
            attributes[DEAD_DELIVERIES] = attributes.get(_FORWARDED_COUNT, "")
        super().__init__(subscription, Message(received.message.data, attributes, key))
        self.ack_id: str = received.ack_id
        self.attempt: int = received.delivery_attempt

    @property
    def deliveries(self) -> int:
        """Pub/Sub's delivery attempt (1 the first time; always 1 without dead letters)."""
        return self.attempt or 1

    def settle(self) -> bool:
        if not super().settle():
            return False
        self.subscription.room.set()
        return True

    async def _ack(self) -> None:
        self.subscription.acks.add(self.ack_id)

    async def _nack(self) -> None:
        """Redeliver now; past ``max_deliveries`` deliveries, dead-letter instead."""
        limit = self.subscription.max_deliveries
        if limit and self.deliveries >= limit:
            await self.subscription.dead_letter(self)
        else:
            self.subscription.nacks.add(self.ack_id)

    async def _release(self) -> None:
        self.subscription.nacks.add(self.ack_id)


class GoogleSubscription(BrokerSubscription[Any]):
    """A member of ``group`` on ``topic``; iterate it for :class:`GoogleDelivery`."""

    owner: GooglePubSub
    not_settled = _NOT_SETTLED

    def __init__(self, owner: GooglePubSub, client: Client, *, topic: str, group: str) -> None:
        super().__init__(owner, topic, group)
        self.options = owner.options
        self.path = self.options.subscription_path(topic, group)
        self.topic_path = self.options.topic_path(topic)
        #: Deliveries before a dead letter (none for dead-letter topics themselves).
        self.max_deliveries = 0 if topic.startswith(DEAD_LETTER_PREFIX) else self.options.max_deliveries
        #: Set when a delivery is settled: the member may pull again.
        self.room = asyncio.Event()
        self.acks = Settlements(self, "ack", self._acknowledge, batch=_CHUNK)
        self.nacks = Settlements(self, "nack", lambda ids: self._deadline(ids, 0), batch=_CHUNK)
        self._client = client
        self._tasks: list[asyncio.Task[None]] = []
        #: Acknowledgement IDs pulled and not yet handed out (their deadlines are extended too).
        self._waiting: set[str] = set()

    async def start(self) -> None:
        """Make sure the subscriptions exist, then pull and extend deadlines."""
        await self.owner.ensure_subscription(self._client, self.topic, self.group)
        self._tasks = [
            asyncio.create_task(self._pulling(), name=f"pull {self.path}"),
            asyncio.create_task(self._extending(), name=f"lease {self.path}"),
        ]

    def _held(self) -> list[GoogleDelivery]:
        return cast(list[GoogleDelivery], list(self.unsettled))

    async def _pulling(self) -> None:
        """Pull while there is room; wait out an outage; make the subscription again if it is gone."""
        options, wait = self.options, self.options.reconnect_wait
        while not self.closed:
            room = options.max_messages - len(self.unsettled) - self.received.qsize()
            if room <= 0:
                self.room.clear()
                await self.room.wait()
                continue
            try:
                response = await self._client.subscriber.pull(
                    request={"subscription": self.path, "max_messages": min(room, _CHUNK)}, timeout=PULL_SECONDS
                )
            except api.DeadlineExceeded:
                continue
            except _NOT_PULLED as exc:
                self.owner.log.debug("Google Pub/Sub: pull on %r failed: %r", self.path, exc)
                await asyncio.sleep(wait)
                wait = min(wait * 2, options.reconnect_max)
                if isinstance(exc, api.NotFound):  # gone (deleted, an emulator restarted empty): make it again
                    await self._rejoin()
                continue
            wait = options.reconnect_wait
            for received in response.received_messages:
                self._waiting.add(received.ack_id)
                self.received.put_nowait(received)

    async def _rejoin(self) -> None:
        try:
            await self.owner.ensure_subscription(self._client, self.topic, self.group)
        except _NOT_MADE as exc:
            self.owner.log.debug("Google Pub/Sub: %r not made again yet: %r", self.path, exc)
        else:
            self.owner.log.warning("Google Pub/Sub: subscription %r was gone; made it again", self.path)

    async def _extending(self) -> None:
        """Every half deadline, extend the deadline of what this member holds."""
        deadline = self.options.ack_deadline
        while not self.closed:
            await asyncio.sleep(deadline / 2)
            held = [d.ack_id for d in self._held()] + list(self._waiting)
            for start in range(0, len(held), _CHUNK):
                await self.settled(self._deadline(held[start:start + _CHUNK], deadline), "deadline extension")

    async def _acknowledge(self, ids: list[str]) -> None:
        await self._client.subscriber.acknowledge(
            request={"subscription": self.path, "ack_ids": ids}, timeout=self.options.publish_timeout
        )

    async def _deadline(self, ids: list[str], seconds: int) -> None:
        await self._client.subscriber.modify_ack_deadline(
            request={"subscription": self.path, "ack_ids": ids, "ack_deadline_seconds": seconds},
            timeout=self.options.publish_timeout,
        )

    async def accept(self, raw: Any) -> GoogleDelivery | None:
        self._waiting.discard(raw.ack_id)
        delivery = GoogleDelivery(raw, self)
        if self.max_deliveries and delivery.deliveries > self.max_deliveries:  # its last delivery expired
            delivery.settle()
            await self.dead_letter(delivery)
            return None
        return delivery

    async def dead_letter(self, delivery: GoogleDelivery) -> None:
        """Publish ``delivery`` on ``dead.<topic>`` and acknowledge it; on failure, redeliver it."""
        stored = await self.publish_dead_letter(delivery, self.options.dead_letter_topic(self.topic))
        (self.acks if stored else self.nacks).add(delivery.ack_id)

    async def returned(self, raw: Any) -> None:
        self._waiting.discard(raw.ack_id)
        self.nacks.add(raw.ack_id)

    async def leave(self) -> None:
        """Stop pulling (the last pull comes back by itself); send the settlements on their way,
        and give back what is still held."""
        self.room.set()
        if self._tasks:
            pulling, extending = self._tasks
            extending.cancel()
            await asyncio.wait({pulling}, timeout=PULL_SECONDS + 1)
            pulling.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for delivery in self._held():
            await delivery.release()
        while not self.received.empty():
            raw = self.received.get_nowait()
            if raw is not None:
                await self.returned(raw)
        await self.acks.sent()
        await self.nacks.sent()
