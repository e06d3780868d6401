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
import time
from collections.abc import Mapping, Sequence
from typing import Any

from hookspecs import ConfigError, Message, PubSubUnavailable
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

from core_plugin_nats._options import DEAD_LETTER_GROUP, DEAD_LETTER_PREFIX, NatsOptions
from core_plugin_nats._subscription import KEY_HEADER, UNAVAILABLE, NatsSubscription

log = logging.getLogger("core.pubsub.nats")
NOT_YET = "not connected yet"


def headers_of(message: Message, extra: dict[str, str] | None = None) -> dict[str, str] | None:
    """NATS headers carrying a message's attributes and key (``None`` when there are none)."""
    headers = dict(message.attributes)
    if message.key is not None:
        headers[KEY_HEADER] = message.key
    headers.update(extra or {})
    return headers or None


class NatsPubSub:
    """The NATS JetStream adapter: ``NatsPubSub(url, options)`` (not connected yet)."""

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.options = NatsOptions.parse(url, options or {})
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._open = False
        self._last_attempt = float("-inf")
        self._last_error = NOT_YET
        self._subscriptions: set[NatsSubscription] = set()

    def __repr__(self) -> str:
        return f"NatsPubSub({','.join(self.options.servers)}, stream={self.options.stream!r})"

    async def open(self) -> None:
        """Connect and make sure the stream exists; :class:`PubSubUnavailable` if NATS is down.

        After a failed ``open`` the adapter stays usable: publish and subscribe try to connect
        again (at most once per ``reconnect_wait``) and raise :class:`PubSubUnavailable` until
        NATS answers.
        """
        self._open = True
        await self._connect()

    async def close(self) -> None:
        """Leave every subscription (its unacknowledged deliveries go back), flush, disconnect."""
        self._open = False
        for subscription in list(self._subscriptions):
            await subscription.close()
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            try:
                await nc.flush(timeout=max(1, round(self.options.publish_timeout)))
            except UNAVAILABLE:
                log.warning("NATS: closing without a final flush (%s)", self._last_error)
            await nc.close()

    async def publish(self, topic: str, messages: Sequence[Message]) -> None:
        """Publish and wait for JetStream to store every message."""
        if not messages:
            return
        subject = self.options.subject(topic)
        js = await self._jetstream()
        timeout = self.options.publish_timeout
        results = await asyncio.gather(
            *(js.publish(subject, m.body, timeout=timeout, headers=headers_of(m)) for m in messages),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if not isinstance(failure, UNAVAILABLE):
                raise failure
        if failures:
            raise PubSubUnavailable(
                f"NATS did not store {len(failures)} of {len(messages)} messages on {subject!r}: {failures[0]!r}"
            ) from failures[0]

    async def subscribe(self, topic: str, *, group: str) -> NatsSubscription:
        """Join ``group`` on ``topic`` through its durable pull consumer (created if missing)."""
        subject = self.options.subject(topic)
        durable = self.options.durable(topic, group)
        js = await self._jetstream()
        try:
            if not topic.startswith(DEAD_LETTER_PREFIX):  # keep its dead letters from now on
                dead = f"{DEAD_LETTER_PREFIX}{topic}"
                dead_durable = self.options.durable(dead, DEAD_LETTER_GROUP)
                await self._ensure_consumer(js, dead_durable, self.options.subject(dead))
            await self._ensure_consumer(js, durable, subject)
        except UNAVAILABLE as exc:
            raise PubSubUnavailable(f"NATS could not create consumer {durable!r}: {exc!r}") from exc
        assert self._nc is not None
        subscription = NatsSubscription(
            self._nc, js, self.options, durable=durable, topic=topic, group=group,
            forget=self._subscriptions.discard,
        )
        await subscription.start()
        self._subscriptions.add(subscription)
        return subscription

    async def _jetstream(self) -> JetStreamContext:
        """The JetStream context if connected now; connects again after a failed ``open``."""
        if not self._open:
            raise PubSubUnavailable("the NATS adapter is closed; call open() first")
        if self._js is None:
            if time.monotonic() - self._last_attempt < self.options.reconnect_wait:
                raise PubSubUnavailable(f"NATS at {','.join(self.options.servers)} is unavailable: {self._last_error}")
            await self._connect()
        assert self._nc is not None and self._js is not None
        if not self._nc.is_connected:
            raise PubSubUnavailable(f"NATS connection lost ({self._last_error}); reconnecting")
        return self._js

    async def _connect(self) -> None:
        options = self.options
        self._last_attempt = time.monotonic()
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
        except UNAVAILABLE as exc:
            # A timeout says little: the client's last error says why (refused, TLS, authorization).
            if not isinstance(exc, asyncio.TimeoutError) or self._last_error == NOT_YET:
                self._last_error = repr(exc)
            await nc.close()
            raise PubSubUnavailable(
                f"NATS at {','.join(options.servers)} cannot be reached: {self._last_error}"
            ) from exc
        except BaseException:
            await nc.close()
            raise
        self._nc, self._js = nc, js

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
        self._last_error = repr(exc)
        log.debug("NATS client error: %r", exc)

    async def _on_disconnected(self) -> None:
        if not self._open:  # our own close()
            return
        log.warning("NATS: disconnected from %s; reconnecting", ",".join(self.options.servers))

    async def _on_reconnected(self) -> None:
        log.warning("NATS: reconnected to %s", ",".join(self.options.servers))
        for subscription in list(self._subscriptions):
            subscription.resume()
