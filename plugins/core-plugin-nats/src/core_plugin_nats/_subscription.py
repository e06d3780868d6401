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
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from hookspecs import Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from core_plugin_nats._options import DEAD_LETTER_PREFIX, NatsOptions

log = logging.getLogger("core.pubsub.nats")

#: The header carrying :attr:`Message.key`.
KEY_HEADER = "Core-Key"
#: Headers added to a dead letter.
DEAD_TOPIC, DEAD_GROUP, DEAD_DELIVERIES = "Core-Dead-Topic", "Core-Dead-Group", "Core-Dead-Deliveries"
#: Lifetime of one pull request (the server answers 408 when it expires unfilled).
PULL_EXPIRES = 5.0
#: What a broken or missing connection raises in nats-py (and the server's API errors).
UNAVAILABLE = (NatsError, OSError, asyncio.TimeoutError)


class NatsDelivery:
    """One received message; settle it once with :meth:`ack` or :meth:`nack`."""

    __slots__ = ("_msg", "_settled", "_subscription", "message")

    def __init__(self, msg: Msg, subscription: NatsSubscription) -> None:
        self._msg = msg
        self._subscription = subscription
        self._settled = False
        attributes = dict(msg.headers or {})
        key = attributes.pop(KEY_HEADER, None)
        self.message = Message(msg.data, attributes, key)

    @property
    def deliveries(self) -> int:
        """How many times JetStream has delivered this message to the group (1 the first time)."""
        return self._msg.metadata.num_delivered

    async def ack(self) -> None:
        """Acknowledge: the group never receives this message again."""
        if self._settle():
            await self._send(self._msg.ack, "ack")

    async def nack(self) -> None:
        """Redeliver now; past ``max_deliveries`` deliveries, dead-letter instead."""
        if not self._settle():
            return
        limit = self._subscription.max_deliveries
        if limit and self.deliveries >= limit:
            await self._subscription.dead_letter(self)
        else:
            await self._send(self._msg.nak, "nak")

    async def release(self) -> None:
        """Give an unsettled delivery back to the group for an immediate redelivery."""
        if self._settle():
            await self._send(self._msg.nak, "nak")

    def _settle(self) -> bool:
        if self._settled:
            return False
        self._settled = True
        self._subscription.unsettled.discard(self)
        return True

    async def _send(self, settle: Callable[[], Awaitable[None]], what: str) -> None:
        try:
            await settle()
        except UNAVAILABLE as exc:
            # Lost with the connection: JetStream redelivers after ack_wait (at least once).
            topic = self._subscription.topic
            log.warning("NATS: %s of a delivery on %r not sent (%r); it will come again", what, topic, exc)


class NatsSubscription:
    """A member of consumer ``group`` on ``topic``; iterate it for :class:`NatsDelivery`."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        options: NatsOptions,
        *,
        durable: str,
        topic: str,
        group: str,
        forget: Callable[[NatsSubscription], None],
    ) -> None:
        self.options = options
        self.topic = topic
        self.group = group
        self.unsettled: set[NatsDelivery] = set()
        self._nc = nc
        self._js = js
        self._forget = forget
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{options.stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._received: asyncio.Queue[Msg | None] = asyncio.Queue()
        self._requested = 0
        self._left = asyncio.Event()
        #: Deliveries before a dead letter (none for dead-letter topics themselves).
        self.max_deliveries = 0 if topic.startswith(DEAD_LETTER_PREFIX) else options.max_deliveries

    async def start(self) -> None:
        """Listen on this member's inbox, where JetStream answers its pull requests."""
        self._sub = await self._nc.subscribe(self._inbox, cb=self._receive)

    def __aiter__(self) -> AsyncIterator[NatsDelivery]:
        return self._deliveries()

    async def close(self) -> None:
        """Leave the group: stop pulling and hand unsettled deliveries back at once."""
        if self._left.is_set():
            return
        self._left.set()
        self._forget(self)
        self._received.put_nowait(None)
        try:
            await self._sub.unsubscribe()
        except UNAVAILABLE as exc:
            log.debug("NATS: unsubscribe failed while closing: %r", exc)
        held = [NatsDelivery(m, self) for m in self._drain() if not _status(m)]
        for delivery in [*self.unsettled, *held]:
            await delivery.release()

    def resume(self) -> None:
        """The connection came back: pull requests made before were lost with it."""
        self._requested = 0
        self._received.put_nowait(None)

    async def dead_letter(self, delivery: NatsDelivery) -> None:
        """Publish ``delivery`` on ``dead.<topic>`` and terminate it; on failure, redeliver it."""
        msg = delivery._msg
        headers = {
            **(msg.headers or {}),
            DEAD_TOPIC: self.topic, DEAD_GROUP: self.group, DEAD_DELIVERIES: str(delivery.deliveries),
        }
        subject = self.options.dead_letter_subject(self.topic)
        try:
            await self._js.publish(subject, msg.data, timeout=self.options.publish_timeout, headers=headers)
        except UNAVAILABLE as exc:
            log.warning("NATS: dead letter for %r not stored (%r); redelivering it instead", self.topic, exc)
            await delivery._send(msg.nak, "nak")
            return
        log.warning(
            "NATS: message on %r dead-lettered to %r after %d deliveries to group %r",
            self.topic, subject, delivery.deliveries, self.group,
        )
        await delivery._send(msg.term, "term")

    async def _deliveries(self) -> AsyncIterator[NatsDelivery]:
        limit = self.max_deliveries
        while not self._left.is_set():
            if self._requested <= self.options.batch // 2:
                await self._pull()
            try:
                msg = await asyncio.wait_for(self._received.get(), PULL_EXPIRES + 1)
            except TimeoutError:  # no answer to our pulls at all: they were lost, ask again
                self._requested = 0
                continue
            if msg is None:
                continue
            if self._left.is_set():  # arrived while leaving: give it back to the group
                if not _status(msg):
                    await NatsDelivery(msg, self).release()
                continue
            status = _status(msg)
            if status:
                self._on_status(msg, status)
                continue
            self._requested = max(0, self._requested - 1)
            delivery = NatsDelivery(msg, self)
            if limit and delivery.deliveries > limit:  # redelivered after a crash or an ack_wait expiry
                delivery._settle()
                await self.dead_letter(delivery)
                continue
            self.unsettled.add(delivery)
            yield delivery

    async def _pull(self) -> None:
        if not self._nc.is_connected:
            return
        want = self.options.batch - self._requested
        request = {"batch": want, "expires": int(PULL_EXPIRES * 1e9)}
        try:
            await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)
        except UNAVAILABLE as exc:
            log.debug("NATS: pull request not sent: %r", exc)
            return
        self._requested += want

    def _on_status(self, msg: Msg, status: str) -> None:
        if status in ("404", "408", "409"):  # a pull request ended: it will bring no more
            pending = (msg.headers or {}).get("Nats-Pending-Messages")
            self._requested = max(0, self._requested - int(pending)) if pending else 0
            if status == "409":
                log.debug("NATS: pull request ended: %s", (msg.headers or {}).get("Description"))

    async def _receive(self, msg: Msg) -> None:
        self._received.put_nowait(msg)

    def _drain(self) -> list[Msg]:
        drained = []
        while not self._received.empty():
            msg = self._received.get_nowait()
            if msg is not None:
                drained.append(msg)
        return drained


def _status(msg: Msg) -> str | None:
    """The status code of a JetStream control message (``None`` for a real message)."""
    if msg.reply or not msg.headers:
        return None
    return msg.headers.get("Status")
