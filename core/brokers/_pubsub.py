"""The broker base: what every pub/sub adapter does the same way, whatever its SDK.

:class:`BrokerPubSub` owns the adapter's life (open, idempotent close), the connection (one
attempt at a time, throttled by :class:`~core.brokers._connection.Backoff` after a failure, so a
publish during an outage fails at once), publishing (every message sent at once, failures
sorted: the SDK's connection errors become one :class:`~hookspecs.PubSubUnavailable`, anything
else is a bug and propagates), and the registry of live subscriptions (closed with the
adapter, resumed when the SDK reconnects). A subclass supplies the SDK: how to connect and
disconnect, how to send one message and wait for the broker's confirm, and which
:class:`~core.brokers.BrokerSubscription` joins a group.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from core.brokers._connection import Backoff
from core.observability import metrics
from hookspecs import Message, PubSubUnavailable

if TYPE_CHECKING:
    from core.brokers._subscription import BrokerSubscription

ClientT = TypeVar("ClientT")
SubscriptionT = TypeVar("SubscriptionT", bound="BrokerSubscription[Any]")

#: ``last_error`` before the first attempt.
NOT_YET = "not connected yet"


class BrokerPubSub(ABC, Generic[ClientT, SubscriptionT]):
    """A :class:`~hookspecs.PubSub` over one SDK client of type ``ClientT``, whose members are
    ``SubscriptionT``.

    :cvar broker: the broker's name in messages (``"NATS"``).
    :cvar unavailable: what the SDK raises when the broker cannot be reached or the connection
        broke; these mean "try later", never a bug.
    :cvar log: the adapter's logger.
    :param reconnect_wait: seconds before the first new attempt after a failed one.
    :param reconnect_max: the longest wait between attempts (the wait doubles up to it).
    """

    broker: ClassVar[str]
    unavailable: ClassVar[tuple[type[BaseException], ...]] = ()
    log: ClassVar[logging.Logger]

    def __init__(self, *, reconnect_wait: float, reconnect_max: float) -> None:
        self.last_error = NOT_YET
        self.subscriptions: set[SubscriptionT] = set()
        self._client: ClientT | None = None
        self._open = False
        self._backoff = Backoff(reconnect_wait, reconnect_max)
        self._connecting = asyncio.Lock()
        self._failed_attempts = 0

    # -- what a broker adapter supplies ----------------------------------------------------

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the broker is, fit for a message (never a password)."""

    @abstractmethod
    async def connect(self) -> ClientT:
        """A connected client, ready to publish; raise one of :attr:`unavailable` if the broker
        cannot be reached (clean up whatever was half made first)."""

    @abstractmethod
    async def disconnect(self, client: ClientT) -> None:
        """Flush and close ``client`` (subscriptions are closed already)."""

    @abstractmethod
    async def send(self, client: ClientT, destination: str, message: Message) -> None:
        """Publish one message and return once the broker has confirmed it."""

    @abstractmethod
    def member(self, client: ClientT, topic: str, group: str) -> SubscriptionT:
        """A new, not yet started, member of ``group`` on ``topic``."""

    def connected(self, client: ClientT) -> bool:
        """Whether ``client`` is connected now (the SDK reconnects a client it lost by itself)."""
        return True

    def destination(self, topic: str) -> str:
        """The broker's name for ``topic``; raise :class:`~hookspecs.PipelineError` for a topic
        the broker cannot carry."""
        return topic

    async def send_all(self, client: ClientT, destination: str, messages: Sequence[Message]) -> list[object]:
        """Send every message at once; the result or the exception of each, in order."""
        return await asyncio.gather(*(self.send(client, destination, m) for m in messages), return_exceptions=True)

    # -- the PubSub protocol ---------------------------------------------------------------

    async def open(self) -> None:
        """Connect now; :class:`PubSubUnavailable` if the broker cannot be reached.

        After a failed ``open`` the adapter stays usable: publish and subscribe try to connect
        again (throttled) and raise :class:`PubSubUnavailable` until the broker answers.
        """
        self._open = True
        if self._client is None:
            self._backoff.reset()
            await self.client()

    async def close(self) -> None:
        """Leave every subscription at once (their unsettled deliveries go back), then
        disconnect. Closing twice, or an adapter that never connected, is a no-op."""
        self._open = False
        await asyncio.gather(*(subscription.close() for subscription in list(self.subscriptions)))
        client, self._client = self._client, None
        if client is not None:
            await self.disconnect(client)

    async def publish(self, topic: str, messages: Sequence[Message]) -> None:
        """Publish and wait for the broker's confirm of every message."""
        if not messages:
            return
        destination = self.destination(topic)
        client = await self.client()
        results = await self.send_all(client, destination, messages)
        failures = [r for r in results if isinstance(r, BaseException)]
        expected: tuple[type[BaseException], ...] = (PubSubUnavailable, *self.unavailable)
        for failure in failures:
            if not isinstance(failure, expected):
                raise failure
        if failures:
            raise PubSubUnavailable(
                f"{self.broker} did not confirm {len(failures)} of {len(messages)} messages "
                f"on {destination!r}: {failures[0]!r}"
            ) from failures[0]

    async def subscribe(self, topic: str, *, group: str) -> SubscriptionT:
        """Join ``group`` on ``topic``; :class:`PubSubUnavailable` if the broker is down."""
        self.destination(topic)
        subscription = self.member(await self.client(), topic, group)
        try:
            await subscription.start()
        except BaseException as exc:
            await subscription.close()
            if isinstance(exc, self.unavailable):
                raise PubSubUnavailable(
                    f"{self.broker} could not add a member of group {group!r} on {topic!r}: {exc!r}"
                ) from exc
            raise
        self.subscriptions.add(subscription)
        return subscription

    # -- the connection --------------------------------------------------------------------

    async def client(self) -> ClientT:
        """The client, connected now; connects again (throttled) after a failed attempt."""
        if not self._open:
            raise PubSubUnavailable(
                f"the {self.broker} adapter is not open (closed, or never opened); call open() first"
            )
        if self._client is None:
            async with self._connecting:
                if self._client is None:
                    await self._attempt()
        client = self._client
        assert client is not None
        if not self.connected(client):
            raise PubSubUnavailable(f"{self.broker} connection lost ({self.last_error}); reconnecting")
        return client

    async def _attempt(self) -> None:
        if not self._backoff.ready():
            raise PubSubUnavailable(f"{self.broker} at {self.location} is unavailable: {self.last_error}")
        expected: tuple[type[BaseException], ...] = (PubSubUnavailable, *self.unavailable)
        try:
            client = await self.connect()
        except expected as exc:
            # A timeout says little: an error the SDK reported meanwhile says why (refused, TLS, auth).
            if not isinstance(exc, asyncio.TimeoutError) or self.last_error == NOT_YET:
                self.last_error = str(exc) if isinstance(exc, PubSubUnavailable) else repr(exc)
            self._backoff.failed()
            self._failed_attempts += 1
            raise PubSubUnavailable(f"{self.broker} at {self.location} cannot be reached: {self.last_error}") from exc
        self._backoff.reset()
        self._client = client
        if self._failed_attempts:  # connected again after failed attempts
            self._failed_attempts = 0
            metrics.child(metrics.BROKER_RECONNECTS, self.broker).inc()

    def noted(self, exc: BaseException) -> None:
        """The SDK reported an error (an error callback): remember it as the reason."""
        self.last_error = repr(exc)
        self.log.debug("%s client error: %r", self.broker, exc)

    def lost(self, exc: BaseException | None = None) -> None:
        """The SDK lost the connection and is reconnecting by itself (a callback)."""
        if not self._open:  # our own close()
            return
        if exc is not None:
            self.last_error = repr(exc)
        self.log.warning("%s: connection to %s lost (%s); reconnecting", self.broker, self.location, self.last_error)

    def restored(self) -> None:
        """The SDK reconnected (a callback): subscriptions resume."""
        self.log.warning("%s: reconnected to %s", self.broker, self.location)
        metrics.child(metrics.BROKER_RECONNECTS, self.broker).inc()
        for subscription in list(self.subscriptions):
            subscription.resume()
