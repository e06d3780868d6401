"""NATS JetStream as the ``core`` pub/sub: one stream per subject prefix, one durable pull
consumer per (topic, consumer group).

The stream has interest retention by default: a message is kept until every group that
existed when it was published has acknowledged it, so the disk holds what is in flight, not
history (``retention = "limits"`` keeps everything for ``max_age`` instead, and new groups
start at the oldest message kept).

Publishing waits for JetStream's acknowledgement of every message, so a message the broker
did not store raises :class:`~hookspecs.PubSubUnavailable` and the gateway falls back to the
schedule. nats-py reconnects by itself (forever, every ``reconnect_wait`` seconds); while it is
disconnected, publish fails at once instead of buffering, and subscriptions resume their pulls
when it is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from core.brokers import DEAD_LETTER_GROUP, DEAD_LETTER_PREFIX, KEY_HEADER, BrokerPubSub
from hookspecs import ConfigError, Message
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from core_plugin_nats._options import NatsOptions
from core_plugin_nats._subscription import UNAVAILABLE, NatsSubscription


def headers_of(message: Message, extra: dict[str, str] | None = None) -> dict[str, str] | None:
    """NATS headers carrying a message's attributes and key (``None`` when there are none)."""
    headers = dict(message.attributes)
    if message.key is not None:
        headers[KEY_HEADER] = message.key
    headers.update(extra or {})
    return headers or None


class NatsPubSub(BrokerPubSub[tuple[Client, JetStreamContext], NatsSubscription]):
    """The NATS JetStream adapter: ``NatsPubSub(url, options)`` (not connected yet)."""

    broker: ClassVar[str] = "NATS"
    unavailable = UNAVAILABLE
    log = logging.getLogger("core.pubsub.nats")

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.options = NatsOptions.parse(url, options or {})
        super().__init__(reconnect_wait=self.options.reconnect_wait, reconnect_max=self.options.reconnect_max)

    def __repr__(self) -> str:
        return f"NatsPubSub({self.location}, stream={self.options.stream!r})"

    @property
    def location(self) -> str:
        return ",".join(self.options.servers)

    def destination(self, topic: str) -> str:
        return self.options.subject(topic)

    def connected(self, client: tuple[Client, JetStreamContext]) -> bool:
        return client[0].is_connected

    async def connect(self) -> tuple[Client, JetStreamContext]:
        options = self.options
        nc = Client()
        try:
            await asyncio.wait_for(nc.connect(
                servers=list(options.servers),
                name="core",
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=options.reconnect_wait,  # type: ignore[arg-type]  # nats-py takes seconds as float
                connect_timeout=options.connect_timeout,  # type: ignore[arg-type]
                tls=options.ssl_context(),
                user=options.user,
                password=options.password,
                token=options.token,
                user_credentials=options.creds,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            ), options.connect_timeout)
            js = nc.jetstream(timeout=options.publish_timeout)
            await self._ensure_stream(js)
        except BaseException:
            await nc.close()
            raise
        return nc, js

    async def disconnect(self, client: tuple[Client, JetStreamContext]) -> None:
        nc = client[0]
        try:
            await nc.flush(timeout=max(1, round(self.options.publish_timeout)))
        except UNAVAILABLE:
            self.log.warning("NATS: closing without a final flush (%s)", self.last_error)
        await nc.close()

    async def send(self, client: tuple[Client, JetStreamContext], destination: str, message: Message) -> None:
        await client[1].publish(
            destination, message.body, timeout=self.options.publish_timeout, headers=headers_of(message)
        )

    def member(self, client: tuple[Client, JetStreamContext], topic: str, group: str) -> NatsSubscription:
        return NatsSubscription(self, *client, topic=topic, group=group)

    async def ensure_consumers(self, js: JetStreamContext, topic: str, group: str) -> str:
        """The durable consumer of ``group`` on ``topic`` (created if missing), and the dead-letter
        group's on ``dead.<topic>`` so its dead letters are kept from now on."""
        if not topic.startswith(DEAD_LETTER_PREFIX):
            dead = f"{DEAD_LETTER_PREFIX}{topic}"
            await self._ensure_consumer(js, self.options.durable(dead, DEAD_LETTER_GROUP), self.options.subject(dead))
        durable = self.options.durable(topic, group)
        await self._ensure_consumer(js, durable, self.options.subject(topic))
        return durable

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        options = self.options
        wanted = f"{options.prefix}.>"
        try:
            info = await js.stream_info(options.stream)
        except NotFoundError:
            await js.add_stream(StreamConfig(
                name=options.stream,
                subjects=[wanted],
                retention=RetentionPolicy.INTEREST if options.retention == "interest" else RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                discard=DiscardPolicy.OLD,
                max_age=options.max_age or None,
            ))
            return
        if wanted not in (info.config.subjects or []):
            raise ConfigError(
                "[options.nats]", "stream", options.stream,
                f"a stream that carries the subjects {wanted!r}; this one carries {info.config.subjects}: "
                "choose another stream name, or the prefix it was made for",
            )

    async def _ensure_consumer(self, js: JetStreamContext, durable: str, subject: str) -> None:
        options = self.options
        try:
            await js.consumer_info(options.stream, durable)
            return
        except NotFoundError:
            pass
        await js.add_consumer(options.stream, ConsumerConfig(
            durable_name=durable,
            filter_subject=subject,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=options.ack_wait,
            max_deliver=-1,  # bounded by the adapter itself, which dead-letters (see _subscription)
            max_ack_pending=options.max_ack_pending,
            deliver_policy=DeliverPolicy.ALL,
        ))

    async def _on_error(self, exc: Exception) -> None:
        self.noted(exc)

    async def _on_disconnected(self) -> None:
        self.lost()

    async def _on_reconnected(self) -> None:
        self.restored()
