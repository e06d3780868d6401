"""The in-process pub/sub adapter (``memory://``): topics and consumer groups in memory.

For a single-process deployment (gateway and scheduler together) and for tests. It keeps the
broker's contract: every consumer group of a topic gets every message published after the
group was created, one member of a group gets each message, and a message that is not
acknowledged (nacked, or held by a subscription that closes) is delivered again. Memory is
bounded: each group holds at most ``max_pending`` messages (waiting or unacknowledged); a
publisher waits for room up to ``publish_timeout`` seconds, then gets
:class:`~hookspecs.PubSubUnavailable` so the gateway falls back to the schedule.

Adapters with the same URL in the same event loop share one broker, as two clients of one
server would; nothing survives the process.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from core.errors import CoreError
from hookspecs import Message, PubSubUnavailable

DEFAULT_MAX_PENDING = 10_000
DEFAULT_PUBLISH_TIMEOUT = 5.0


@dataclass(slots=True)
class _Entry:
    """A message held by a group, with a unique id among the group's deliveries."""

    id: int
    message: Message


@dataclass(slots=True)
class _Group:
    """One consumer group of a topic: waiting messages, unsettled deliveries, idle members."""

    ready: deque[_Entry] = field(default_factory=deque)
    in_flight: dict[int, tuple[_Entry, MemorySubscription]] = field(default_factory=dict)
    members: list[asyncio.Future[None]] = field(default_factory=list)
    publishers: list[asyncio.Future[None]] = field(default_factory=list)

    def held(self) -> int:
        return len(self.ready) + len(self.in_flight)

    def wake_members(self) -> None:
        _wake(self.members)

    def wake_publishers(self) -> None:
        _wake(self.publishers)

    def requeue(self, entry_id: int) -> None:
        """Put an unsettled delivery back at the head of the line, for any member."""
        held = self.in_flight.pop(entry_id, None)
        if held is not None:
            self.ready.appendleft(held[0])
            self.wake_members()


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
    waiters.clear()


@dataclass(slots=True)
class _Broker:
    """Topics by name, each a dict of consumer groups by name."""

    topics: dict[str, dict[str, _Group]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=itertools.count)


#: One set of brokers per event loop, by broker name (the URL's host and path).
_BROKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Broker]] = (
    weakref.WeakKeyDictionary()
)


def _broker(name: str) -> _Broker:
    brokers = _BROKERS.setdefault(asyncio.get_running_loop(), {})
    return brokers.setdefault(name, _Broker())


class MemoryDelivery:
    """A message handed to one member of a group, to settle once with ack or nack."""

    __slots__ = ("_entry", "_group", "_settled")

    def __init__(self, entry: _Entry, group: _Group) -> None:
        self._entry = entry
        self._group = group
        self._settled = False

    @property
    def message(self) -> Message:
        return self._entry.message

    async def ack(self) -> None:
        if not self._settled:
            self._settled = True
            if self._group.in_flight.pop(self._entry.id, None) is not None:
                self._group.wake_publishers()

    async def nack(self) -> None:
        if not self._settled:
            self._settled = True
            self._group.requeue(self._entry.id)


class MemorySubscription:
    """A member of a consumer group; its unsettled deliveries go back to the group on close."""

    def __init__(self, group: _Group, owner: MemoryPubSub) -> None:
        self._group = group
        self._owner = owner
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    async def __aiter__(self) -> AsyncIterator[MemoryDelivery]:
        group = self._group
        while not self._closed:
            if group.ready:
                entry = group.ready.popleft()
                group.in_flight[entry.id] = (entry, self)
                yield MemoryDelivery(entry, group)
                continue
            self._waiter = asyncio.get_running_loop().create_future()
            group.members.append(self._waiter)
            await self._waiter

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        group = self._group
        for entry_id in [i for i, (_, member) in group.in_flight.items() if member is self]:
            group.requeue(entry_id)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self._owner._subscriptions.discard(self)


class MemoryPubSub:
    """In-process :class:`~hookspecs.PubSub` (``memory://`` or ``memory://name``).

    :param max_pending: most messages one group holds (waiting plus unacknowledged).
    :param publish_timeout: seconds a publisher waits for room before the broker is
        reported unavailable.
    """

    def __init__(self, url: str = "memory://", **options: Any) -> None:
        unknown = sorted(set(options) - {"max_pending", "publish_timeout"})
        if unknown:
            raise CoreError(
                f"memory pubsub: unknown option(s) {unknown}",
                hint="known options are max_pending and publish_timeout",
            )
        parts = urlsplit(url)
        self.name = parts.netloc + parts.path
        self.max_pending = int(options.get("max_pending", DEFAULT_MAX_PENDING))
        self.publish_timeout = float(options.get("publish_timeout", DEFAULT_PUBLISH_TIMEOUT))
        if self.max_pending < 1 or self.publish_timeout < 0:
            raise CoreError(
                f"memory pubsub: max_pending={self.max_pending}, publish_timeout={self.publish_timeout}",
                hint="max_pending must be at least 1 and publish_timeout not negative",
            )
        self._broker: _Broker | None = None
        self._subscriptions: set[MemorySubscription] = set()

    def _require(self) -> _Broker:
        if self._broker is None:
            raise PubSubUnavailable(f"memory pubsub {self.name!r} is not open; call open() first")
        return self._broker

    async def open(self) -> None:
        self._broker = _broker(self.name)

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.close()
        self._broker = None

    async def publish(self, topic: str, messages: Sequence[Message]) -> None:
        broker = self._require()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_timeout
        for message in messages:
            for group in list(broker.topics.get(topic, {}).values()):
                while group.held() >= self.max_pending:
                    room: asyncio.Future[None] = loop.create_future()
                    group.publishers.append(room)
                    try:
                        await asyncio.wait_for(room, max(0.0, deadline - loop.time()))
                    except TimeoutError:
                        raise PubSubUnavailable(
                            f"memory pubsub: a consumer group of topic {topic!r} holds "
                            f"{group.held()} unacknowledged messages (max_pending={self.max_pending})"
                        ) from None
                group.ready.append(_Entry(next(broker.ids), message))
                group.wake_members()

    async def subscribe(self, topic: str, *, group: str) -> MemorySubscription:
        broker = self._require()
        members = broker.topics.setdefault(topic, {}).setdefault(group, _Group())
        subscription = MemorySubscription(members, self)
        self._subscriptions.add(subscription)
        return subscription
