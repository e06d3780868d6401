"""The pub/sub conformance suite: at-least-once delivery through consumer groups.

Checks what the pubsub protocol of :mod:`hookspecs` promises: every group of a topic gets every message
published after it subscribed, one member of a group gets each message, and what was not
acknowledged (nacked, or held by a member that left) is delivered again. ``reconnect``
(close the adapter, open it again, and find the group where it was) is a capability.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from core.testing._base import AdapterSuite, requires
from hookspecs import Capability, Delivery, Message, PubSub, Subscription


class Inbox:
    """Drains subscriptions in background tasks into one queue of ``(label, delivery)``.

    :param timeout: seconds :meth:`take` waits for the deliveries it expects.
    :param quiet: seconds :meth:`quiet` waits to see that nothing more arrives.
    :param duplicates: the broker may hand out a copy of a message again although every member
        settles in time (an at-least-once broker such as an SQS standard queue): :meth:`take_each`
        and :meth:`quiet` then acknowledge and leave out copies of a message already taken.
    """

    def __init__(self, timeout: float, quiet: float, *, duplicates: bool = False) -> None:
        self.timeout = timeout
        self.quiet_period = quiet
        self.duplicates = duplicates
        #: Bodies taken by :meth:`take_each` (with the label when taken ``by_label``).
        self._taken: set[object] = set()
        self._queue: asyncio.Queue[tuple[str, Delivery]] = asyncio.Queue()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._subscriptions: dict[str, Subscription] = {}

    def follow(self, subscription: Subscription, label: str) -> None:
        """Start draining ``subscription``; its deliveries are tagged ``label``."""

        async def drain() -> None:
            async for delivery in subscription:
                await self._queue.put((label, delivery))

        self._subscriptions[label] = subscription
        self._tasks[label] = asyncio.create_task(drain(), name=f"inbox-{label}")

    def _raise_failures(self) -> None:
        for label, task in self._tasks.items():
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError(f"subscription {label!r} failed while iterating") from task.exception()

    async def take(self, count: int) -> list[tuple[str, Delivery]]:
        """The next ``count`` deliveries; fails if they do not arrive within ``timeout``."""
        got: list[tuple[str, Delivery]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while len(got) < count:
            self._raise_failures()
            try:
                got.append(await asyncio.wait_for(self._queue.get(), min(0.2, max(0.0, deadline - loop.time()))))
            except TimeoutError:
                if loop.time() >= deadline:
                    bodies = [d.message.body for _, d in got]
                    pytest.fail(f"expected {count} deliveries within {self.timeout}s, got {len(got)}: {bodies}")
        return got

    async def take_each(self, count: int, *, by_label: bool = False) -> list[tuple[str, Delivery]]:
        """The next ``count`` distinct messages (by body, or by label and body with ``by_label``).

        Without ``duplicates`` it is :meth:`take`, so a copy counts and the caller's assertions see
        it; with them, a copy of a message already taken is acknowledged and left out."""
        got: list[tuple[str, Delivery]] = []
        while len(got) < count:
            for label, delivery in await self.take(count - len(got)):
                key = (label, delivery.message.body) if by_label else delivery.message.body
                if self.duplicates and key in self._taken:
                    await delivery.ack()
                    continue
                self._taken.add(key)
                got.append((label, delivery))
        return got

    async def quiet(self) -> list[tuple[str, Delivery]]:
        """Whatever arrives during the quiet period (the caller expects nothing)."""
        await asyncio.sleep(self.quiet_period)
        self._raise_failures()
        extra = []
        while not self._queue.empty():
            label, delivery = self._queue.get_nowait()
            if self.duplicates and ({delivery.message.body, (label, delivery.message.body)} & self._taken):
                await delivery.ack()
                continue
            extra.append((label, delivery))
        return extra

    async def leave(self, label: str) -> None:
        """Close the subscription ``label`` (unacknowledged deliveries go back to its group)."""
        await self._subscriptions.pop(label).close()
        await self.forget(label)

    async def forget(self, label: str) -> None:
        """Stop draining ``label`` without closing it (its adapter was closed under it)."""
        self._subscriptions.pop(label, None)
        task = self._tasks.pop(label)
        try:
            await asyncio.wait_for(task, 1.0)
        except Exception:  # noqa: BLE001 - a subscription may end with any error once its adapter closed
            task.cancel()

    async def close(self) -> None:
        for label in list(self._subscriptions):
            await self.leave(label)
        for label in list(self._tasks):
            await self.forget(label)


def bodies(deliveries: list[tuple[str, Delivery]]) -> list[bytes]:
    """The message bodies of ``(label, delivery)`` pairs, sorted."""
    return sorted(d.message.body for _, d in deliveries)


async def ack_all(deliveries: list[tuple[str, Delivery]]) -> None:
    for _, delivery in deliveries:
        await delivery.ack()


class PubSubSuite(AdapterSuite):
    """Subclass it and override ``adapter_url`` (or ``make_adapter``).

    :cvar delivery_timeout: seconds to wait for an expected delivery (raise it for brokers
        whose consumer groups take long to join).
    :cvar quiet_period: seconds to watch that no unexpected delivery arrives.
    :cvar duplicates: the broker is at-least-once even when members settle in time (SQS standard
        queues): the suites then let a copy of a message they already took pass (see :class:`Inbox`).
    """

    kind = "pubsub"
    delivery_timeout: ClassVar[float] = 10.0
    quiet_period: ClassVar[float] = 0.5
    duplicates: ClassVar[bool] = False

    @pytest.fixture
    def topic(self) -> str:
        """A topic name of this test alone."""
        return f"conformance.{uuid.uuid4().hex[:12]}"

    @pytest.fixture
    def group(self) -> str:
        """A consumer-group name of this test alone."""
        return f"group_{uuid.uuid4().hex[:12]}"

    @pytest_asyncio.fixture
    async def inbox(self) -> AsyncIterator[Inbox]:
        box = Inbox(self.delivery_timeout, self.quiet_period, duplicates=self.duplicates)
        try:
            yield box
        finally:
            await box.close()

    async def test_adapter_is_a_pubsub(self, adapter: Any) -> None:
        assert isinstance(adapter, PubSub)

    async def test_delivers_body_attributes_and_key(
        self, adapter: PubSub, inbox: Inbox, topic: str, group: str
    ) -> None:
        inbox.follow(await adapter.subscribe(topic, group=group), "a")
        sent = Message(b"\x00binary \xff body", {"content-type": "application/json", "x-n": "1"}, key="k1")
        await adapter.publish(topic, [sent])
        [(_, delivery)] = await inbox.take(1)
        assert isinstance(delivery, Delivery)
        got = delivery.message
        assert (got.body, got.key) == (sent.body, sent.key)
        assert {k: got.attributes[k] for k in sent.attributes} == dict(sent.attributes)
        await delivery.ack()

    async def test_publish_of_no_messages_is_accepted(self, adapter: PubSub, topic: str) -> None:
        await adapter.publish(topic, [])

    async def test_every_group_gets_every_message(self, adapter: PubSub, inbox: Inbox, topic: str) -> None:
        inbox.follow(await adapter.subscribe(topic, group=f"g1_{uuid.uuid4().hex[:8]}"), "g1")
        inbox.follow(await adapter.subscribe(topic, group=f"g2_{uuid.uuid4().hex[:8]}"), "g2")
        sent = [f"m{i}".encode() for i in range(5)]
        await adapter.publish(topic, [Message(b) for b in sent])
        got = await inbox.take_each(10, by_label=True)
        await ack_all(got)
        for label in ("g1", "g2"):
            assert sorted(d.message.body for who, d in got if who == label) == sorted(sent)
        assert await inbox.quiet() == []

    async def test_one_member_of_a_group_gets_each_message(
        self, adapter: PubSub, inbox: Inbox, topic: str, group: str
    ) -> None:
        inbox.follow(await adapter.subscribe(topic, group=group), "a")
        inbox.follow(await adapter.subscribe(topic, group=group), "b")
        sent = [f"m{i}".encode() for i in range(10)]
        await adapter.publish(topic, [Message(b, key=f"k{i}") for i, b in enumerate(sent)])
        got = await inbox.take_each(len(sent))
        await ack_all(got)
        assert bodies(got) == sorted(sent)
        assert await inbox.quiet() == [], "a message went to two members of one group"

    async def test_topics_are_separate(self, adapter: PubSub, inbox: Inbox, topic: str, group: str) -> None:
        inbox.follow(await adapter.subscribe(topic, group=group), "a")
        await adapter.publish(topic + ".other", [Message(b"elsewhere")])
        await adapter.publish(topic, [Message(b"here")])
        got = await inbox.take(1)
        await ack_all(got)
        assert bodies(got) == [b"here"]
        assert await inbox.quiet() == []

    async def test_nack_redelivers(self, adapter: PubSub, inbox: Inbox, topic: str, group: str) -> None:
        inbox.follow(await adapter.subscribe(topic, group=group), "a")
        await adapter.publish(topic, [Message(b"again")])
        [(_, first)] = await inbox.take(1)
        await first.nack()
        [(_, second)] = await inbox.take(1)
        assert second.message.body == b"again"
        await second.ack()
        assert await inbox.quiet() == []

    async def test_unacked_delivery_goes_to_another_member_when_its_member_leaves(
        self, adapter: PubSub, inbox: Inbox, topic: str, group: str
    ) -> None:
        inbox.follow(await adapter.subscribe(topic, group=group), "a")
        await adapter.publish(topic, [Message(b"held")])
        [(who, _)] = await inbox.take(1)
        assert who == "a"
        inbox.follow(await adapter.subscribe(topic, group=group), "b")
        await inbox.leave("a")
        # "a" may have got it again before it left (a rebalance when "b" joined): at least once.
        while (got := (await inbox.take(1))[0])[0] == "a":
            pass
        who, delivery = got
        assert (who, delivery.message.body) == ("b", b"held")
        await delivery.ack()

    async def test_acknowledged_message_is_not_delivered_again(
        self, adapter: PubSub, inbox: Inbox, topic: str, group: str
    ) -> None:
        inbox.follow(await adapter.subscribe(topic, group=group), "a")
        await adapter.publish(topic, [Message(b"once")])
        [(_, delivery)] = await inbox.take(1)
        await delivery.ack()
        await inbox.leave("a")
        inbox.follow(await adapter.subscribe(topic, group=group), "b")
        await adapter.publish(topic, [Message(b"next")])
        got = await inbox.take(1)
        await ack_all(got)
        assert bodies(got) == [b"next"]
        assert await inbox.quiet() == [], "an acknowledged message was delivered again"

    async def test_many_messages_all_arrive(self, adapter: PubSub, inbox: Inbox, topic: str, group: str) -> None:
        inbox.follow(await adapter.subscribe(topic, group=group), "a")
        sent = [f"n{i:04d}".encode() for i in range(200)]
        for start in range(0, len(sent), 50):
            await adapter.publish(topic, [Message(b) for b in sent[start:start + 50]])
        got = await inbox.take_each(len(sent))
        await ack_all(got)
        assert bodies(got) == sent

    @requires(Capability.RECONNECT)
    async def test_survives_a_reconnect(self, adapter: PubSub, inbox: Inbox, topic: str, group: str) -> None:
        inbox.follow(await adapter.subscribe(topic, group=group), "before")
        await adapter.publish(topic, [Message(b"in flight")])
        await inbox.take(1)
        await adapter.close()
        await inbox.forget("before")
        await adapter.open()
        inbox.follow(await adapter.subscribe(topic, group=group), "after")
        [(_, redelivered)] = await inbox.take(1)
        assert redelivered.message.body == b"in flight", "an unacknowledged message was lost across a reconnect"
        await redelivered.ack()
        await adapter.publish(topic, [Message(b"after reconnect")])
        got = await inbox.take(1)
        await ack_all(got)
        assert bodies(got) == [b"after reconnect"]
