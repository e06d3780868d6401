"""An asyncio face on confluent-kafka's ``Producer``.

librdkafka sends in its own threads and reports each message's fate through a delivery
callback that runs inside ``poll()``. A daemon thread polls; the callback resolves an
asyncio future on the event loop, so ``send`` returns once the brokers acknowledged every
message (``acks=all``) or raises :class:`~hookspecs.PubSubUnavailable` when one was not
acknowledged within ``message.timeout.ms``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import confluent_kafka
from hookspecs import Message, PubSubUnavailable

log = logging.getLogger("core_plugin_kafka")

#: Producer defaults; the user's ``[options.kafka.config]`` table overrides them.
PRODUCER_DEFAULTS = {"acks": "all", "enable.idempotence": True, "linger.ms": 2}


def headers(message: Message) -> list[tuple[str, str | bytes | None]]:
    """Kafka record headers for a message's attributes."""
    return [(name, value.encode()) for name, value in message.attributes.items()]


class AsyncProducer:
    """One librdkafka producer shared by every publish of an adapter."""

    def __init__(self, config: Mapping[str, Any], timeout_ms: int) -> None:
        self._timeout = timeout_ms / 1000
        self._producer = confluent_kafka.Producer(
            {**PRODUCER_DEFAULTS, "message.timeout.ms": timeout_ms, "logger": log, **config}
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kafka-producer", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    async def probe(self) -> None:
        """Ask the cluster for its metadata; :class:`PubSubUnavailable` if nobody answers."""
        try:
            await asyncio.to_thread(self._producer.list_topics, timeout=self._timeout)
        except confluent_kafka.KafkaException as exc:
            raise PubSubUnavailable(f"no Kafka broker answered within {self._timeout:g} s: {exc}") from None

    async def declare(self, topic: str) -> None:
        """Make sure ``topic`` exists: a producer's metadata request lets the brokers create it
        (``auto.create.topics.enable``); a consumer's would not, and would wait forever."""
        try:
            metadata = await asyncio.to_thread(self._producer.list_topics, topic, self._timeout)
        except confluent_kafka.KafkaException as exc:
            raise PubSubUnavailable(f"kafka: no metadata for topic {topic!r}: {exc}") from None
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise PubSubUnavailable(
                f"kafka: topic {topic!r} does not exist and the brokers did not create it "
                f"({found.error if found else 'no metadata'}); create it, or enable auto.create.topics.enable"
            )

    async def send(self, topic: str, messages: Sequence[Message]) -> list[object]:
        """Publish ``messages`` to ``topic``; once the brokers hold them all, or said why not,
        the outcome of each (``None``, or the exception)."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        deadline = loop.time() + self._timeout
        for message in messages:
            future: asyncio.Future[None] = loop.create_future()
            futures.append(future)
            while True:
                try:
                    self._producer.produce(
                        topic, message.body, key=message.key, headers=headers(message),
                        on_delivery=self._reporter(loop, future),
                    )
                    break
                except BufferError:  # librdkafka's local queue is full: let it drain
                    if loop.time() > deadline:
                        raise PubSubUnavailable(
                            f"kafka: the local send queue stayed full for {self._timeout:g} s"
                        ) from None
                    await asyncio.sleep(0.01)
                except confluent_kafka.KafkaException as exc:
                    raise PubSubUnavailable(f"kafka: cannot publish to {topic!r}: {exc}") from None
        try:
            # librdkafka reports every message within message.timeout.ms; the margin covers
            # the poll thread's own latency.
            return await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), self._timeout + 5)
        except TimeoutError:
            raise PubSubUnavailable(f"kafka: no delivery report for {topic!r} in time") from None

    @staticmethod
    def _reporter(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> Any:
        def report(error: confluent_kafka.KafkaError | None, record: confluent_kafka.Message) -> None:
            loop.call_soon_threadsafe(_settle, future, error, record.topic())

        return report

    async def close(self) -> None:
        """Send what is queued (within the publish timeout), then stop polling.

        Every wait is bounded: the poll thread checks its stop flag every 100 ms, and a
        poll stuck in librdkafka longer than the publish timeout is left to die with the
        process (a daemon thread).
        """
        remaining = await asyncio.to_thread(self._producer.flush, self._timeout)
        if remaining:
            log.warning("kafka: %d published message(s) were still unsent at close", remaining)
        self._stop.set()
        await asyncio.to_thread(self._thread.join, self._timeout)
        if self._thread.is_alive():
            log.warning("kafka: the producer's poll thread did not stop within %g s; left behind", self._timeout)


def _settle(future: asyncio.Future[None], error: confluent_kafka.KafkaError | None, topic: str | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(PubSubUnavailable(f"kafka: publishing to {topic!r} failed: {error.str()}"))
