"""A consumer-group membership on one Kafka topic, delivered at least once.

A daemon thread owns the librdkafka consumer: it polls, serves rebalances and hands fetched
records to the event loop. Offsets are committed by hand (``enable.auto.commit=false``) and
only up to the first delivery not yet settled, per partition (:mod:`._offsets`), so a crash
or a rebalance redelivers what was not acknowledged. A nack delivers the same record again
to this member after ``redelivery_delay_ms``; after ``max_redeliveries`` nacks it is
published to ``<topic>.dlq`` and counted as settled.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import confluent_kafka
from confluent_kafka import TopicPartition
from core.brokers import BrokerDelivery, BrokerSubscription
from hookspecs import Message, PubSubUnavailable

from core_plugin_kafka._offsets import PartitionOffsets
from core_plugin_kafka._producer import AsyncProducer

if TYPE_CHECKING:
    from core_plugin_kafka.pubsub import KafkaPubSub

log = logging.getLogger("core_plugin_kafka")

#: Most records taken from librdkafka in one go.
FETCH_BATCH = 500
#: Seconds a closing member waits beyond ``session_timeout_ms`` for its consumer to leave.
CLOSE_MARGIN = 5.0
#: Attributes added to a dead-lettered message.
DLQ_ATTRIBUTES = ("core-dlq-topic", "core-dlq-partition", "core-dlq-offset", "core-dlq-group", "core-dlq-deliveries")


@dataclass(frozen=True, slots=True)
class _Record:
    """A fetched record and the partition assignment it was fetched under."""

    tracker: PartitionOffsets
    partition: int
    offset: int
    message: Message


def _text(value: str | bytes | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value or ""


def _message(record: confluent_kafka.Message) -> Message:
    key, headers = record.key(), record.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return Message(
        body=record.value() or b"",
        attributes={name: _text(header) for name, header in pairs},
        key=None if key is None else _text(key),
    )


class KafkaDelivery(BrokerDelivery):
    """One delivery of a record; ack commits it (in order), nack delivers it again. A member
    that leaves gives back what it did not settle by not committing it."""

    __slots__ = ("record",)
    subscription: KafkaSubscription

    def __init__(self, subscription: KafkaSubscription, record: _Record) -> None:
        super().__init__(subscription, record.message)
        self.record = record

    async def _ack(self) -> None:
        self.subscription._settle(self.record)

    async def _nack(self) -> None:
        await self.subscription._nack(self.record)


class KafkaSubscription(BrokerSubscription[_Record]):
    """Member of consumer ``group`` on ``topic`` (both already prefixed)."""

    owner: KafkaPubSub

    def __init__(self, owner: KafkaPubSub, producer: AsyncProducer, *, topic: str, group: str) -> None:
        super().__init__(owner, topic, group)
        self._options = options = owner.options
        self._producer = producer
        self._loop = asyncio.get_running_loop()
        self._assigned = asyncio.Event()
        self._trackers: dict[int, PartitionOffsets] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._consumer = confluent_kafka.Consumer({
            "auto.offset.reset": options.offset_reset,
            "session.timeout.ms": options.session_timeout_ms,
            # a member learns of a rebalance at its next heartbeat: keep joins and leaves quick
            "heartbeat.interval.ms": max(100, min(3000, options.session_timeout_ms // 10)),
            # how long a broker may hold an empty fetch (librdkafka: 500 ms); a real broker
            # answers as soon as data arrives, the mock cluster only when this expires
            "fetch.wait.max.ms": 100,
            # incremental rebalances: a member keeps the partitions it is not asked to give up,
            # so a join does not take back (and redeliver) what the others hold
            "partition.assignment.strategy": "cooperative-sticky",
            **options.client,
            "group.id": group,
            "enable.auto.commit": False,
            "allow.auto.create.topics": True,
            "logger": log,
        })
        self._thread = threading.Thread(target=self._serve, name=f"kafka-consumer-{group}", daemon=True)

    async def start(self) -> None:
        """Make sure the topic exists, join the group; return once this member has its first
        assignment."""
        await self._producer.declare(self.topic)
        self._thread.start()
        timeout = self._options.join_timeout_ms / 1000
        try:
            await asyncio.wait_for(self._assigned.wait(), timeout)
        except TimeoutError:
            raise PubSubUnavailable(
                f"kafka: could not join consumer group {self.group!r} on {self.topic!r} within {timeout:g} s"
            ) from None
        if self._failure is not None:
            raise PubSubUnavailable(f"kafka: the consumer of {self.topic!r} failed: {self._failure}")

    async def next_raw(self) -> _Record | None:
        record = await self.received.get()
        if record is None:
            self.received.put_nowait(None)  # wake any other iterator too
            if self._failure is not None:
                raise PubSubUnavailable(f"kafka consumer of {self.topic!r} stopped: {self._failure}")
        return record

    async def accept(self, raw: _Record) -> KafkaDelivery | None:
        if self._trackers.get(raw.partition) is not raw.tracker:  # revoked meanwhile
            return None
        return KafkaDelivery(self, raw)

    async def leave(self) -> None:
        """Commit what was acknowledged and leave the group; the rest goes to other members.

        Waits at most ``session_timeout_ms`` plus a margin for the consumer thread: by then
        the coordinator has dropped a member that could not leave cleanly anyway. A thread
        still stuck in librdkafka after that is a daemon and cannot hold up the exit.
        """
        self._stop.set()
        if self._thread.ident is None:  # never started: the consumer thread did not close it
            self._consumer.close()
        elif self._thread.is_alive():
            timeout = self._options.session_timeout_ms / 1000 + CLOSE_MARGIN
            await asyncio.to_thread(self._thread.join, timeout)
            if self._thread.is_alive():
                log.warning("kafka: the consumer of %r (group %r) did not close within %g s; left behind",
                            self.topic, self.group, timeout)

    # -- settling (event loop) -------------------------------------------------------------

    def _settle(self, record: _Record) -> None:
        with self._lock:
            if self._trackers.get(record.partition) is not record.tracker:
                return
            record.tracker.settle(record.offset)

    async def _nack(self, record: _Record) -> None:
        with self._lock:
            if self._trackers.get(record.partition) is not record.tracker:
                return
            nacks = record.tracker.nacks[record.offset] = record.tracker.nacks.get(record.offset, 0) + 1
        if nacks > self._options.max_redeliveries:
            try:
                await self._dead_letter(record, nacks)
            except PubSubUnavailable as exc:
                log.warning("kafka: could not dead-letter %s[%d]@%d, delivering it again: %s",
                            self.topic, record.partition, record.offset, exc)
            else:
                self._settle(record)
                return
        self._loop.call_later(self._options.redelivery_delay_ms / 1000, self.received.put_nowait, record)

    async def _dead_letter(self, record: _Record, deliveries: int) -> None:
        message = record.message
        attributes = {**message.attributes, **dict(zip(DLQ_ATTRIBUTES, (
            self.topic, str(record.partition), str(record.offset), self.group, str(deliveries)
        ), strict=True))}
        await self.owner.send(self._producer, f"{self.topic}.dlq", Message(message.body, attributes, message.key))
        log.warning("kafka: %s[%d]@%d was nacked %d times; moved to %s.dlq",
                    self.topic, record.partition, record.offset, deliveries, self.topic)

    def _commit(self, *, asynchronous: bool, partitions: list[int] | None = None) -> None:
        """Send the committable offsets not sent yet (of ``partitions``, default all).

        Only the consumer thread calls this: the client does not take calls from two threads.
        """
        with self._lock:
            offsets = []
            for partition in self._trackers if partitions is None else partitions:
                tracker = self._trackers.get(partition)
                if tracker is not None and tracker.committable > tracker.committed:
                    tracker.committed = tracker.committable
                    offsets.append(TopicPartition(self.topic, partition, tracker.committable))
        if not offsets:
            return
        try:
            if asynchronous:
                self._consumer.commit(offsets=offsets, asynchronous=True)
            else:
                self._consumer.commit(offsets=offsets, asynchronous=False)
        except (confluent_kafka.KafkaException, RuntimeError) as exc:
            log.warning("kafka: commit of %s for group %r failed (redelivery follows): %s",
                        self.topic, self.group, exc)

    # -- the consumer thread ---------------------------------------------------------------

    def _serve(self) -> None:
        consumer = self._consumer
        try:
            consumer.subscribe([self.topic], on_assign=self._on_assign,
                               on_revoke=self._on_revoke, on_lost=self._on_lost)
            paused = False
            while not self._stop.is_set():
                self._commit(asynchronous=True)  # what was settled since the last poll
                with self._lock:
                    room = self._options.max_in_flight - sum(t.unsettled for t in self._trackers.values())
                if room <= 0:  # stay in the group, fetch nothing until deliveries are settled
                    consumer.pause(consumer.assignment())
                    paused = True
                elif paused:
                    consumer.resume(consumer.assignment())
                    paused = False
                first = consumer.poll(0.1)
                if first is not None:
                    more = min(FETCH_BATCH, room) - 1
                    self._hand_over([first, *(consumer.consume(more, 0) if more > 0 else ())])
            self._commit(asynchronous=False)
        except BaseException as exc:  # the iterator reports it
            self._failure = exc
            log.exception("kafka consumer of %r failed", self.topic)
        finally:
            try:
                consumer.close()
            except (confluent_kafka.KafkaException, RuntimeError) as exc:
                log.warning("kafka: closing the consumer of %r: %s", self.topic, exc)
            with self._lock:
                self._trackers.clear()
            self._call_loop(self.received.put_nowait, None)
            self._call_loop(self._assigned.set)  # a start() still waiting learns of the end

    def _hand_over(self, records: list[confluent_kafka.Message]) -> None:
        ready: list[_Record] = []
        with self._lock:
            for record in records:
                error = record.error()
                if error is not None:
                    if error.code() != confluent_kafka.KafkaError._PARTITION_EOF:
                        log.warning("kafka consumer of %r: %s", self.topic, error.str())
                    continue
                partition, offset = record.partition(), record.offset()
                tracker = self._trackers.get(partition) if partition is not None else None
                if tracker is None or offset is None:
                    continue
                tracker.delivered(offset)
                ready.append(_Record(tracker, partition, offset, _message(record)))  # type: ignore[arg-type]
        if ready:
            self._call_loop(self._enqueue, ready)

    def _enqueue(self, records: list[_Record]) -> None:
        for record in records:
            self.received.put_nowait(record)

    def _call_loop(self, function: Any, *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(function, *args)
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            pass

    def _on_assign(self, consumer: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
        """New partitions: track them; pin where a new group starts (``offset_reset``)."""
        with self._lock:
            for tp in partitions:
                self._trackers[tp.partition] = PartitionOffsets()
        if partitions:
            self._pin_start(consumer, partitions)
        self._call_loop(self._assigned.set)

    def _pin_start(self, consumer: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
        """Commit the start offset of partitions this group never committed.

        Without it, a group that has not fetched yet would start at whatever "latest" is when
        it first fetches, and miss messages published after :meth:`start` returned.
        """
        timeout = self._options.join_timeout_ms / 1000
        try:
            committed = consumer.committed(partitions, timeout)
            start = []
            for tp in committed:
                if tp.offset < 0:
                    low, high = consumer.get_watermark_offsets(tp, timeout)
                    start.append(TopicPartition(tp.topic, tp.partition,
                                                high if self._options.offset_reset == "latest" else low))
            if start:
                consumer.commit(offsets=start, asynchronous=False)
        except confluent_kafka.KafkaException as exc:
            log.warning("kafka: could not pin the start of group %r on %r (auto.offset.reset applies): %s",
                        self.group, self.topic, exc)

    def _on_revoke(self, consumer: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions leave: commit what was settled on them, forget the rest (redelivered)."""
        self._commit(asynchronous=False, partitions=[tp.partition for tp in partitions])
        self._on_lost(consumer, partitions)

    def _on_lost(self, consumer: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
        with self._lock:
            for tp in partitions:
                self._trackers.pop(tp.partition, None)
