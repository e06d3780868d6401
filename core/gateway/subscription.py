"""Subscription triggers: read a pub/sub topic through the configured pubsub adapter.

Each message is extracted (default: the JSON body of an HTTP trigger), ingested, and acked
only after the commit. A message that cannot be extracted or stored is nacked (the adapter
bounds redelivery) after a delay that grows with consecutive failures, so a poison message
or a down store does not spin. Members of one consumer group share the topic, so every
gateway runs its subscriptions: no lease is needed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from core.gateway.drafts import checked, drafts_from_json
from core.gateway.ingest import Ingestor
from core.observability import metrics, tracing
from hookspecs import Delivery, EventDraft, PubSub, Subscription, SubscriptionTrigger

log = logging.getLogger("core.gateway")

#: Messages handled at once by one subscription trigger (they share the store's commits).
CONCURRENCY = 64
MAX_NACK_DELAY = 5.0
#: Seconds in-flight messages get to finish on shutdown before they are left to redelivery.
DRAIN_SECONDS = 10.0


def group_of(source: str, trigger: SubscriptionTrigger) -> str:
    """The consumer group: the trigger's own, else ``core.<source>.<trigger>``."""
    return trigger.group or f"core.{source}.{trigger.name}"


class SubscriptionRunner:
    """Consumes one subscription trigger's topic until cancelled."""

    def __init__(self, ingestor: Ingestor, pubsub: PubSub, source: str, trigger: SubscriptionTrigger) -> None:
        self.ingestor = ingestor
        self.pubsub = pubsub
        self.source = source
        self.trigger = trigger
        self._rejected = metrics.child(metrics.EVENTS_INGESTED, source, trigger.name, "rejected")
        self.group = group_of(source, trigger)
        self.where = f"source {source!r}, subscription trigger {trigger.name!r}"
        self._failures = 0
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Join the group and handle deliveries until cancelled; rejoin if the feed breaks."""
        while True:
            subscription = await self._subscribe()
            try:
                await self._consume(subscription)
            except Exception as exc:  # noqa: BLE001 - the adapter gave up: join again
                log.warning("%s: the subscription broke (%s); joining again", self.where, exc)
                await asyncio.sleep(1.0)
            else:
                return

    async def _consume(self, subscription: Subscription) -> None:
        try:
            async for delivery in subscription:
                await self._slots.acquire()
                task = asyncio.create_task(self._handle(delivery))
                self._tasks.add(task)
                task.add_done_callback(self._done)
        finally:
            for task in self._waiting:  # their deliveries go back to the group on close
                task.cancel()
            if self._tasks:
                _, late = await asyncio.wait(set(self._tasks), timeout=DRAIN_SECONDS)
                for task in late:
                    task.cancel()
            try:
                await subscription.close()
            except Exception as exc:  # noqa: BLE001 - unsettled deliveries are redelivered anyway
                log.warning("%s: closing the subscription failed: %s", self.where, exc)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _subscribe(self) -> Subscription:
        delay = 0.5
        while True:
            try:
                subscription = await self.pubsub.subscribe(self.trigger.topic, group=self.group)
            except Exception as exc:  # noqa: BLE001 - the broker may come back
                log.warning("%s: cannot subscribe to %r yet (%s); retrying in %.1fs",
                            self.where, self.trigger.topic, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            log.info("%s: reading topic %r as group %r", self.where, self.trigger.topic, self.group)
            return subscription

    async def _extract(self, delivery: Delivery) -> list[EventDraft]:
        if self.trigger.extract is None:
            return drafts_from_json(delivery.message.body)
        drafts: Any = self.trigger.extract(delivery.message)
        if inspect.isawaitable(drafts):
            drafts = await drafts
        return checked(drafts, self.where)

    async def _handle(self, delivery: Delivery) -> None:
        try:
            drafts = await self._extract(delivery)
        except Exception as exc:  # noqa: BLE001 - Rejected, ValueError or a bug: same answer
            self._rejected.inc()
            log.warning("%s: message refused, nacked: %s", self.where, exc)
            await self._nack(delivery)
            return
        try:
            if tracing.ON:  # continue the trace of the message's publisher, if it sent one
                with tracing.tracer().start_as_current_span(
                    f"{self.trigger.topic} receive", context=tracing.context_of(delivery.message.attributes),
                    kind=tracing.SpanKind.CONSUMER, attributes={"core.source": self.source},
                ):
                    await self.ingestor.ingest(self.source, self.trigger.name, drafts)
            else:
                await self.ingestor.ingest(self.source, self.trigger.name, drafts)
        except Exception as exc:  # noqa: BLE001 - not stored: redeliver later
            log.error("%s: could not store the message's events, nacked: %s", self.where, exc)
            await self._nack(delivery)
            return
        self._failures = 0
        await delivery.ack()

    async def _nack(self, delivery: Delivery) -> None:
        """Nack after a delay growing with consecutive failures (cancelled on shutdown)."""
        self._failures += 1
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            await asyncio.sleep(min(MAX_NACK_DELAY, 0.05 * 2.0 ** self._failures))
        finally:
            self._waiting.discard(task)
        await delivery.nack()
