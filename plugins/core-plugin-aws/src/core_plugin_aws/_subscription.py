"""A consumer-group membership on SQS: long polls (``ReceiveMessage``, up to 10 messages,
``WaitTimeSeconds``) on the group's queue, the visibility timeout as the ack deadline.

A member receives only while it has room (``max_messages`` unsettled, counting the polls on
their way), so a busy member never holds back its group. While a delivery is unsettled its
visibility is extended (``ChangeMessageVisibilityBatch``) every half ``ack_deadline``, so a long
load is not redelivered under it; a member whose process died stops extending, and its
deliveries come again after ``ack_deadline``. ``ack()`` is ``DeleteMessageBatch``, ``nack()``
(and a release when the member leaves) is visibility 0: SQS delivers the message again at once.
Settlements are sent in batches of 10, several calls at a time, carrying all that came meanwhile.

On its ``max_deliveries``-th ``nack`` (SQS's ``ApproximateReceiveCount``) the member publishes the
message on topic ``dead.<topic>`` with attributes saying where it came from, and deletes it. A
message whose deliveries expired instead (its members died, or never settled it) is moved by the
queue's redrive policy to the queue of group ``dead-letters`` on ``dead.<topic>``: its member fills
in the same attributes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError
from core.brokers import (
    DEAD_DELIVERIES,
    DEAD_GROUP,
    DEAD_LETTER_PREFIX,
    DEAD_TOPIC,
    BrokerDelivery,
    BrokerSubscription,
    Settlements,
)
from hookspecs import Message, PubSubUnavailable

from core_plugin_aws._errors import NOT_DONE, gone
from core_plugin_aws._messages import decode

if TYPE_CHECKING:
    from core_plugin_aws.pubsub import AwsPubSub, Client

#: Most entries of one SQS batch call, and batch calls of one kind in flight at once.
_BATCH, _CALLS = 10, 8


class AwsDelivery(BrokerDelivery):
    """One received message; settle it once with :meth:`ack` or :meth:`nack`."""

    __slots__ = ("count", "receipt")
    subscription: AwsSubscription

    def __init__(self, received: dict[str, Any], subscription: AwsSubscription) -> None:
        message = decode(received.get("Body", ""), received.get("MessageAttributes", {}))
        system = received.get("Attributes", {})
        if subscription.topic.startswith(DEAD_LETTER_PREFIX) and DEAD_TOPIC not in message.attributes:
            # Moved here by a redrive policy: say where from, as the adapter's own dead letters do.
            source = str(system.get("DeadLetterQueueSourceArn", ""))
            message = Message(message.body, {
                **message.attributes,
                DEAD_TOPIC: subscription.topic.removeprefix(DEAD_LETTER_PREFIX),
                DEAD_GROUP: source.rpartition(":")[2] or "(a queue's redrive policy)",
                DEAD_DELIVERIES: "",
            }, message.key)
        super().__init__(subscription, message)
        self.receipt: str = received["ReceiptHandle"]
        self.count = int(system.get("ApproximateReceiveCount", 1) or 1)

    @property
    def deliveries(self) -> int:
        """SQS's receive count of the message in this queue (1 the first time)."""
        return self.count

    def settle(self) -> bool:
        if not super().settle():
            return False
        self.subscription.room.set()
        return True

    async def _ack(self) -> None:
        self.subscription.deletes.add(self.receipt)

    async def _nack(self) -> None:
        """Redeliver now; on the ``max_deliveries``-th delivery, dead-letter instead."""
        limit = self.subscription.max_deliveries
        if limit and self.deliveries >= limit:
            await self.subscription.dead_letter(self)
        else:
            self.subscription.returns.add(self.receipt)

    async def _release(self) -> None:
        self.subscription.returns.add(self.receipt)


class AwsSubscription(BrokerSubscription[dict[str, Any]]):
    """A member of ``group`` on ``topic``; iterate it for :class:`AwsDelivery`."""

    owner: AwsPubSub
    not_settled = (ClientError, PubSubUnavailable)

    def __init__(self, owner: AwsPubSub, client: Client, *, topic: str, group: str) -> None:
        super().__init__(owner, topic, group)
        self.options = owner.options
        #: The queue's URL, once :meth:`start` made sure of it.
        self.queue = self.options.queues.get(topic) or self.options.queue_name(topic, group)
        #: Deliveries before a dead letter (none for dead-letter topics themselves).
        self.max_deliveries = 0 if topic.startswith(DEAD_LETTER_PREFIX) else self.options.max_deliveries
        #: Set when a delivery is settled: the member may receive again.
        self.room = asyncio.Event()
        self.deletes = Settlements(self, "ack", self._delete, batch=_BATCH, calls=_CALLS)
        self.returns = Settlements(self, "nack", lambda receipts: self._visibility(receipts, 0),
                                   batch=_BATCH, calls=_CALLS)
        self._client = client
        self._receivers: list[asyncio.Task[None]] = []
        self._extender: asyncio.Task[None] | None = None
        #: Messages asked for by polls on their way.
        self._asking = 0
        #: Receipt handles received and not yet handed out (their visibility is extended too).
        self._waiting: set[str] = set()

    async def start(self) -> None:
        """Make sure the queue (and its topic, subscription and dead-letter queue) exists, then
        receive and extend visibility."""
        self.queue = await self.owner.ensure_queue(self._client, self.topic, self.group)
        self._receivers = [
            asyncio.create_task(self._receiving(), name=f"receive {self.queue} #{n}")
            for n in range(self.options.receivers)
        ]
        self._extender = asyncio.create_task(self._extending(), name=f"visibility {self.queue}")

    def leaving(self) -> bool:
        """Whether the member is leaving (read again after each wait)."""
        return self.closed

    def _held(self) -> list[AwsDelivery]:
        return cast(list[AwsDelivery], list(self.unsettled))

    async def _receiving(self) -> None:
        """Receive while there is room; wait out an outage; make the queue again if it is gone."""
        options, owner, wait = self.options, self.owner, self.options.reconnect_wait
        poll_timeout = options.wait_seconds + options.publish_timeout
        while not self.closed:
            room = min(10, options.max_messages - len(self.unsettled) - self.received.qsize() - self._asking)
            if room <= 0:
                self.room.clear()
                await self.room.wait()
                continue
            await owner.up()
            if self.leaving():
                break
            self._asking += room
            try:
                answer = await owner.call(
                    self._client.polls, self._client.sqs.receive_message, poll_timeout,
                    QueueUrl=self.queue, MaxNumberOfMessages=room, WaitTimeSeconds=options.wait_seconds,
                    VisibilityTimeout=options.ack_deadline, MessageAttributeNames=["All"],
                    MessageSystemAttributeNames=["ApproximateReceiveCount", "DeadLetterQueueSourceArn"],
                )
            except NOT_DONE as exc:
                owner.log.debug("AWS SNS/SQS: receive on %r failed: %r", self.queue, exc)
                await asyncio.sleep(wait)
                wait = min(wait * 2, options.reconnect_max)
                if gone(exc):
                    await self.rejoin()
                continue
            finally:
                self._asking -= room
            wait = options.reconnect_wait
            for received in answer.get("Messages", []):
                if self.leaving():
                    await self.returned(cast(dict[str, Any], received))
                    continue
                self._waiting.add(received["ReceiptHandle"])
                self.received.put_nowait(cast(dict[str, Any], received))

    async def rejoin(self) -> None:
        """The queue is gone (deleted, a moto server restarted empty): make it again."""
        try:
            self.queue = await self.owner.ensure_queue(self._client, self.topic, self.group)
        except NOT_DONE as exc:
            self.owner.log.debug("AWS SNS/SQS: %r not made again yet: %r", self.queue, exc)
        else:
            self.owner.log.warning("AWS SNS/SQS: queue %r was gone; made it again", self.queue)

    async def _extending(self) -> None:
        """Every half deadline, extend the visibility of what this member holds."""
        deadline = self.options.ack_deadline
        while not self.closed:
            await asyncio.sleep(deadline / 2)
            held = [d.receipt for d in self._held()] + list(self._waiting)
            for start in range(0, len(held), _BATCH * _CALLS):
                chunk = held[start:start + _BATCH * _CALLS]
                await asyncio.gather(*(
                    self.settled(self._visibility(chunk[i:i + _BATCH], deadline), "visibility extension")
                    for i in range(0, len(chunk), _BATCH)
                ))

    async def _delete(self, receipts: Sequence[str]) -> None:
        answer = await self.owner.call(
            self._client.calls, self._client.sqs.delete_message_batch, self.options.publish_timeout,
            QueueUrl=self.queue, Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts)],
        )
        self._failures("ack", answer.get("Failed", []))

    async def _visibility(self, receipts: Sequence[str], seconds: int) -> None:
        answer = await self.owner.call(
            self._client.calls, self._client.sqs.change_message_visibility_batch, self.options.publish_timeout,
            QueueUrl=self.queue,
            Entries=[{"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": seconds} for i, r in enumerate(receipts)],
        )
        self._failures("visibility change", answer.get("Failed", []))

    def _failures(self, what: str, failed: Sequence[Any]) -> None:
        for entry in failed:  # an expired receipt handle: the message comes (or came) again
            self.owner.log.debug("AWS SNS/SQS: %s on %r not taken: %s", what, self.queue, entry.get("Code"))

    async def accept(self, raw: dict[str, Any]) -> AwsDelivery | None:
        self._waiting.discard(raw["ReceiptHandle"])
        delivery = AwsDelivery(raw, self)
        if self.max_deliveries and delivery.deliveries > self.max_deliveries:  # no redrive policy caught it
            delivery.settle()
            await self.dead_letter(delivery)
            return None
        return delivery

    async def dead_letter(self, delivery: AwsDelivery) -> None:
        """Publish ``delivery`` on ``dead.<topic>`` and delete it; on failure, redeliver it."""
        stored = await self.publish_dead_letter(delivery, self.options.dead_letter_topic(self.topic))
        (self.deletes if stored else self.returns).add(delivery.receipt)

    async def returned(self, raw: dict[str, Any]) -> None:
        self._waiting.discard(raw["ReceiptHandle"])
        self.returns.add(raw["ReceiptHandle"])

    async def leave(self) -> None:
        """Stop receiving (the last polls come back by themselves: a cancelled one would hide
        what it received for ``ack_deadline``); send the settlements on their way, and give back
        what is still held."""
        self.room.set()
        if self._extender is not None:
            self._extender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._extender
        if self._receivers:
            _, pending = await asyncio.wait(self._receivers, timeout=self.options.wait_seconds + 2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._receivers, return_exceptions=True)
        for delivery in self._held():
            await delivery.release()
        while not self.received.empty():
            raw = self.received.get_nowait()
            if raw is not None:
                await self.returned(raw)
        await self.deletes.sent()
        await self.returns.sent()
