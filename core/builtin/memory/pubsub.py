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
import logging
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from core.brokers import BrokerDelivery, BrokerPubSub, BrokerSubscription
from core.builtin.memory.plugin import OPTIONS
from hookspecs import Message, PubSubUnavailable, read_options


@dataclass(slots=True)
class _Entry:
    """A message held by a group, with a unique id among the group's deliveries."""

    id: int
    message: Message


@dataclass(slots=True)
class _Group:
    """One consumer group of a topic: waiting messages, unsettled deliveries, idle members."""

    ready: deque[_Entry] = field(default_factory=deque)
    in_flight: dict[int, _Entry] = field(default_factory=dict)
    members: list[asyncio.Future[None]] = field(default_factory=list)
    publishers: list[asyncio.Future[None]] = field(default_factory=list)

    def held(self) -> int:
        return len(self.ready) + len(self.in_flight)

    def wake_members(self) -> None:
        if self.members:
            _wake(self.members)

    def wake_publishers(self) -> None:
        if self.publishers:
            _wake(self.publishers)

    def requeue(self, entry_id: int) -> None:
        """Put an unsettled delivery back at the head of the line, for any member."""
        entry = self.in_flight.pop(entry_id, None)
        if entry is not None:
            self.ready.appendleft(entry)
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


class MemoryDelivery(BrokerDelivery):
    """A message handed to one member of a group, to settle once with ack or nack."""

    __slots__ = ("_entry", "_group")

    def __init__(self, subscription: MemorySubscription, entry: _Entry) -> None:
        super().__init__(subscription, entry.message)
        self._entry = entry
        self._group = subscription.members

    async def _ack(self) -> None:
        if self._group.in_flight.pop(self._entry.id, None) is not None:
            self._group.wake_publishers()

    async def _nack(self) -> None:
        self._group.requeue(self._entry.id)

    _release = _nack


class MemorySubscription(BrokerSubscription[_Entry]):
    """A member of a consumer group; its unsettled deliveries go back to the group on close."""

    def __init__(self, owner: MemoryPubSub, members: _Group, topic: str, group: str) -> None:
        super().__init__(owner, topic, group)
        self.members = members
        self._waiter: asyncio.Future[None] | None = None

    async def next_raw(self) -> _Entry | None:
        group = self.members
        if not group.ready:
            self._waiter = asyncio.get_running_loop().create_future()
            group.members.append(self._waiter)
            await self._waiter
            return None
        entry = group.ready.popleft()
        group.in_flight[entry.id] = entry
        return entry

    async def accept(self, raw: _Entry) -> MemoryDelivery:
        return MemoryDelivery(self, raw)

    async def returned(self, raw: _Entry) -> None:
        self.members.requeue(raw.id)

    async def leave(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class MemoryPubSub(BrokerPubSub[_Broker, MemorySubscription]):
    """In-process :class:`~hookspecs.PubSub` (``memory://`` or ``memory://name``); the options
    are the plugin's :data:`~core.builtin.memory.plugin.OPTIONS`."""

    broker: ClassVar[str] = "memory"
    log = logging.getLogger("core.pubsub.memory")

    def __init__(self, url: str = "memory://", **options: Any) -> None:
        values = read_options("memory", options, OPTIONS)
        parts = urlsplit(url)
        self.name = parts.netloc + parts.path
        self.max_pending: int = values["max_pending"]
        self.publish_timeout: float = values["publish_timeout"]
        super().__init__(reconnect_wait=0.05, reconnect_max=0.05)

    @property
    def location(self) -> str:
        return f"memory://{self.name}"

    async def connect(self) -> _Broker:
        brokers = _BROKERS.setdefault(asyncio.get_running_loop(), {})
        return brokers.setdefault(self.name, _Broker())

    async def disconnect(self, client: _Broker) -> None:
        """Nothing to flush: the broker lives on for the other adapters of its URL."""

    async def send_all(self, client: _Broker, destination: str, messages: Sequence[Message]) -> list[object]:
        """Messages in order, each waiting for room up to what is left of ``publish_timeout``."""
        deadline = asyncio.get_running_loop().time() + self.publish_timeout
        groups = list(client.topics.get(destination, {}).values())
        for message in messages:
            for group in groups:
                if group.held() >= self.max_pending:
                    await self._room(group, destination, deadline)  # a group may join meanwhile:
                    groups = list(client.topics.get(destination, {}).values())  # it gets what follows
                group.ready.append(_Entry(next(client.ids), message))
                group.wake_members()
        return []

    async def send(self, client: _Broker, destination: str, message: Message) -> None:
        await self.send_all(client, destination, [message])

    def member(self, client: _Broker, topic: str, group: str) -> MemorySubscription:
        members = client.topics.setdefault(topic, {}).setdefault(group, _Group())
        return MemorySubscription(self, members, topic, group)

    async def _room(self, group: _Group, topic: str, deadline: float) -> None:
        """Wait until ``group`` holds fewer than ``max_pending`` messages, or the deadline."""
        loop = asyncio.get_running_loop()
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
