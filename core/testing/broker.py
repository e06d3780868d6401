"""Optional pub/sub suites for brokers, beyond :class:`~core.testing.pubsub.PubSubSuite`.

- :class:`BrokerDeliverySuite`: a busy member does not hold back its group, and a delivery held
  by a process that dies goes to another member.
- :class:`DeadLetterSuite`: a message delivered ``max_deliveries`` times is dead-lettered on
  the topic ``dead.<topic>``, with its original topic and group in attributes.
- :class:`BrokerOutageSuite`: the broker stops and starts again under the adapter (needs a
  ``broker_stopped`` fixture): publish fails fast meanwhile, and nothing is lost after.

Each subclasses :class:`~core.testing._base.AdapterSuite`: override ``adapter_url`` as for the
conformance suite. Extra adapters (other clients, other processes) are built from the same URL
with options from the suite's class attributes merged over ``adapter_options``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from core.brokers import DEAD_GROUP, DEAD_TOPIC
from core.testing._base import AdapterPool, AdapterSuite, _adapter_url, create_adapter
from core.testing.pubsub import Inbox, PubSubSuite, ack_all, bodies
from hookspecs import Delivery, Message, PubSub, PubSubUnavailable

#: A group member in its own process: prints ``ready``, then the first body it receives, and
#: hangs holding it unsettled. Arguments: adapter URL, options (JSON), topic, group.
MEMBER = """
import asyncio, json, sys
from core.testing import create_adapter

async def main():
    adapter = create_adapter("pubsub", sys.argv[1], json.loads(sys.argv[2]))
    await adapter.open()
    subscription = await adapter.subscribe(sys.argv[3], group=sys.argv[4])
    print("ready", flush=True)
    async for delivery in subscription:
        print(delivery.message.body.decode(), flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""

#: ``await clients(**options)``: another opened adapter, ``options`` over ``adapter_options``.
Clients = Callable[..., Awaitable[PubSub]]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (at the time of the call)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def publish_when_back(adapter: PubSub, topic: str, message: Message, within: float = 20.0) -> None:
    """Publish, retrying on :class:`PubSubUnavailable` until the broker is back (fails after ``within``)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            await adapter.publish(topic, [message])
            return
        except PubSubUnavailable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


class _BrokerSuite(AdapterSuite):
    """The pub/sub fixtures of :class:`PubSubSuite`, and ``clients`` for more adapters."""

    kind = "pubsub"
    delivery_timeout: ClassVar[float] = 10.0
    quiet_period: ClassVar[float] = 0.5
    duplicates: ClassVar[bool] = False
    topic = PubSubSuite.topic
    group = PubSubSuite.group
    inbox = PubSubSuite.inbox

    @pytest.fixture
    def broker_url(self, request: pytest.FixtureRequest) -> str:
        """``adapter_url``, found outside the event loop (it may come from async fixtures)."""
        return _adapter_url(request, self.kind)

    @pytest_asyncio.fixture
    async def clients(self, broker_url: str, adapter_options: dict[str, Any]) -> AsyncIterator[Clients]:
        """Open more adapters of the service under test, with options of their own; closed after."""
        pools: list[AdapterPool] = []

        async def open_client(**options: Any) -> PubSub:
            pools.append(AdapterPool(lambda: create_adapter(self.kind, broker_url, {**adapter_options, **options})))
            client: PubSub = await pools[-1].open()
            return client

        try:
            yield open_client
        finally:
            for pool in pools:
                await pool.close_all()

    def deliveries(self, delivery: Delivery) -> int | None:
        """How many times ``delivery``'s message was delivered, if the adapter says (else ``None``,
        and the suites do not check counts). Override it to return your delivery's count."""
        return None


class BrokerDeliverySuite(_BrokerSuite):
    """Members that are slow or die.

    :cvar one_at_a_time: adapter options under which a member holds at most one unsettled message
        (a prefetch or batch of 1), given to the busy member.
    :cvar redelivery_options: adapter options under which a delivery held by a dead member comes
        back soon (a short ack timeout, if the broker needs one to notice).
    """

    one_at_a_time: ClassVar[Mapping[str, Any]] = {}
    redelivery_options: ClassVar[Mapping[str, Any]] = {}

    async def test_a_busy_member_does_not_hold_back_the_rest_of_its_group(
        self, clients: Clients, inbox: Inbox, topic: str, group: str
    ) -> None:
        busy_adapter = await clients(**self.one_at_a_time)
        free_adapter = await clients()
        busy = aiter(await busy_adapter.subscribe(topic, group=group))
        await busy_adapter.publish(topic, [Message(b"m00")])
        held = await asyncio.wait_for(anext(busy), self.delivery_timeout)  # held, unacked, no more iteration
        inbox.follow(await free_adapter.subscribe(topic, group=group), "free")
        sent = [f"m{i:02d}".encode() for i in range(1, 20)]
        await busy_adapter.publish(topic, [Message(body) for body in sent])
        got = await inbox.take_each(len(sent))
        await ack_all(got)
        assert bodies(got) == sent
        await held.ack()
        assert await inbox.quiet() == []

    async def test_a_delivery_held_by_a_killed_process_goes_to_another_member(
        self, broker_url: str, clients: Clients, inbox: Inbox, topic: str, group: str
    ) -> None:
        options = dict(self.redelivery_options)
        adapter = await clients(**options)
        member = subprocess.Popen([sys.executable, "-c", MEMBER, broker_url, json.dumps(options), topic, group],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert member.stdout is not None
            ready = await asyncio.wait_for(asyncio.to_thread(member.stdout.readline), 30)
            assert ready.strip() == "ready"
            await adapter.publish(topic, [Message(b"in the dead process")])
            line = await asyncio.wait_for(asyncio.to_thread(member.stdout.readline), 30)
            assert line.strip() == "in the dead process"
            member.kill()
            member.wait()
            inbox.follow(await adapter.subscribe(topic, group=group), "survivor")
            [(_, delivery)] = await inbox.take(1)
            assert delivery.message.body == b"in the dead process"
            assert self.deliveries(delivery) in (None, 2)
            await delivery.ack()
        finally:
            member.kill()
            member.wait()


class DeadLetterSuite(_BrokerSuite):
    """Dead letters: after ``max_deliveries`` deliveries (adapter option), a message goes to the
    topic ``dead.<topic>``, with attributes naming where it came from.

    :cvar dead_topic_attribute: the attribute holding the original topic.
    :cvar dead_group_attribute: the attribute holding the group that gave up on it.
    """

    dead_topic_attribute: ClassVar[str] = DEAD_TOPIC
    dead_group_attribute: ClassVar[str] = DEAD_GROUP

    def check_dead_letter(self, attributes: Mapping[str, str]) -> None:
        """Override to check what else your adapter records on a dead letter (delivered twice)."""

    async def test_a_message_nacked_max_deliveries_times_is_dead_lettered_and_kept(
        self, clients: Clients, inbox: Inbox, topic: str, group: str
    ) -> None:
        adapter = await clients(max_deliveries=2)
        inbox.follow(await adapter.subscribe(topic, group=group), "member")
        await adapter.publish(topic, [Message(b"poison", {"kind": "bad"}, key="k1")])
        for attempt in (1, 2):
            [(who, delivery)] = await inbox.take(1)
            assert who == "member"
            assert self.deliveries(delivery) in (None, attempt)
            await delivery.nack()
        assert await inbox.quiet() == [], "a message was delivered more than max_deliveries times"
        inbox.follow(await adapter.subscribe(f"dead.{topic}", group="dead-letters"), "dead")
        [(who, dead)] = await inbox.take(1)
        assert (who, dead.message.body, dead.message.key) == ("dead", b"poison", "k1")
        attributes = dead.message.attributes
        assert (attributes["kind"], attributes[self.dead_topic_attribute], attributes[self.dead_group_attribute]) == (
            "bad", topic, group
        )
        self.check_dead_letter(attributes)
        await dead.ack()
        assert await inbox.quiet() == [], "a dead-lettered message was delivered to its group again"


class BrokerOutageSuite(_BrokerSuite):
    """The broker goes away and comes back. Override two fixtures besides ``adapter_url``:

    - ``broker_stopped``: a callable returning a context manager that stops the broker for its
      block and always starts it again;
    - ``unreachable_url``: an adapter URL where nothing listens (see :func:`free_port`).

    :cvar connect_options: adapter options for an adapter opened while the broker is down (a
        short connect timeout keeps the test quick).
    """

    delivery_timeout: ClassVar[float] = 20.0
    connect_options: ClassVar[Mapping[str, Any]] = {}

    @pytest.fixture
    def broker_stopped(self) -> Callable[[], AbstractContextManager[None]]:
        """``with broker_stopped():`` stops the broker for the block, then starts it again."""
        pytest.fail("BrokerOutageSuite needs a fixture 'broker_stopped'", pytrace=False)

    @pytest.fixture
    def unreachable_url(self) -> str:
        """An adapter URL where nothing listens."""
        pytest.fail("BrokerOutageSuite needs a fixture 'unreachable_url'", pytrace=False)

    async def test_open_raises_pubsub_unavailable_when_nothing_listens(
        self, unreachable_url: str, adapter_options: dict[str, Any]
    ) -> None:
        adapter: PubSub = create_adapter(self.kind, unreachable_url, adapter_options)
        with pytest.raises(PubSubUnavailable, match="cannot be reached"):
            await adapter.open()
        with pytest.raises(PubSubUnavailable):
            await adapter.publish("orders", [Message(b"x")])
        await adapter.close()
        with pytest.raises(PubSubUnavailable, match="closed"):
            await adapter.publish("orders", [Message(b"x")])

    async def test_publish_fails_while_the_broker_is_down_and_delivery_resumes_after(
        self, adapter: PubSub, inbox: Inbox, topic: str, group: str,
        broker_stopped: Callable[[], AbstractContextManager[None]],
    ) -> None:
        inbox.follow(await adapter.subscribe(topic, group=group), "member")
        await adapter.publish(topic, [Message(b"before"), Message(b"held across the restart")])
        got = await inbox.take(2)
        held = next(d for _, d in got if d.message.body == b"held across the restart")
        await next(d for _, d in got if d.message.body == b"before").ack()
        with broker_stopped():
            with pytest.raises(PubSubUnavailable):
                await adapter.publish(topic, [Message(b"while down")])
            await held.ack()  # lost with the connection, or sent after it: either way at least once
        await publish_when_back(adapter, topic, Message(b"after"))
        after = await inbox.take(1) + await inbox.quiet()
        await ack_all(after)
        assert b"after" in bodies(after)
        assert set(bodies(after)) <= {b"after", b"held across the restart"}, "only the unacked one may come again"
        assert b"while down" not in bodies(after)

    async def test_an_adapter_opened_while_the_broker_is_down_connects_when_it_is_back(
        self, broker_url: str, adapter_options: dict[str, Any], inbox: Inbox, topic: str, group: str,
        broker_stopped: Callable[[], AbstractContextManager[None]],
    ) -> None:
        adapter: PubSub = create_adapter(self.kind, broker_url, {**adapter_options, **self.connect_options})
        try:
            with broker_stopped():
                with pytest.raises(PubSubUnavailable):
                    await adapter.open()
                with pytest.raises(PubSubUnavailable):
                    await adapter.publish(topic, [Message(b"lost to the schedule")])
            await publish_when_back(adapter, topic, Message(b"no group yet: not kept"))
            inbox.follow(await adapter.subscribe(topic, group=group), "member")
            await adapter.publish(topic, [Message(b"first after start")])
            got = await inbox.take(1)
            await ack_all(got)
            assert bodies(got) == [b"first after start"]
        finally:
            await adapter.close()
