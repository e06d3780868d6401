"""The broker base (core.brokers): what every broker adapter inherits, checked on a toy broker.

The toy is a broker of our own (no SDK is imitated): a list per topic and a switch that makes
it unreachable. The real adapters built on the base (memory, NATS, RabbitMQ, Kafka) pass the
kit's PubSubSuite and BrokerOutageSuite against their real brokers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import ClassVar

import pytest

from core.brokers import Backoff, BrokerDelivery, BrokerPubSub, BrokerSubscription
from hookspecs import Message, PubSubUnavailable


class Down(ConnectionError):
    """The toy broker cannot be reached."""


class ToyBroker:
    """Topics as lists; ``up`` switches it on and off; ``refuse`` fails those bodies."""

    def __init__(self) -> None:
        self.up = True
        self.connects = 0
        self.refuse: set[bytes] = set()
        self.topics: dict[str, list[Message]] = {}
        self.settlements: list[str] = []


class ToyDelivery(BrokerDelivery):
    __slots__ = ()
    subscription: ToySubscription

    async def _ack(self) -> None:
        self.subscription.owner.toy.settlements.append(f"ack {self.message.body.decode()}")
        if not self.subscription.owner.toy.up:
            raise Down("gone")

    async def _nack(self) -> None:
        self.subscription.owner.toy.settlements.append(f"nack {self.message.body.decode()}")

    async def _release(self) -> None:
        self.subscription.owner.toy.settlements.append(f"release {self.message.body.decode()}")


class ToySubscription(BrokerSubscription[Message]):
    owner: ToyPubSub
    fail_start: BaseException | None = None

    async def start(self) -> None:
        if self.fail_start is not None:
            raise self.fail_start

    async def accept(self, raw: Message) -> ToyDelivery:
        return ToyDelivery(self, raw)

    async def leave(self) -> None:
        self.owner.toy.settlements.append(f"left {self.group}")


class ToyPubSub(BrokerPubSub[ToyBroker, ToySubscription]):
    broker: ClassVar[str] = "Toy"
    unavailable = (Down,)
    log = logging.getLogger("core.pubsub.toy")

    def __init__(self, toy: ToyBroker, reconnect_wait: float = 0.2) -> None:
        super().__init__(reconnect_wait=reconnect_wait, reconnect_max=1.0)
        self.toy = toy

    @property
    def location(self) -> str:
        return "toy://here"

    async def connect(self) -> ToyBroker:
        self.toy.connects += 1
        await asyncio.sleep(0.01)
        if not self.toy.up:
            raise Down("refused")
        return self.toy

    async def disconnect(self, client: ToyBroker) -> None:
        client.settlements.append("disconnected")

    async def send(self, client: ToyBroker, destination: str, message: Message) -> None:
        if message.body in client.refuse:
            raise Down(f"not confirmed: {message.body!r}")
        if message.body == b"bug":
            raise TypeError("a bug, not an outage")
        client.topics.setdefault(destination, []).append(message)

    def member(self, client: ToyBroker, topic: str, group: str) -> ToySubscription:
        return ToySubscription(self, topic, group)


def messages(*bodies: bytes) -> Sequence[Message]:
    return [Message(b) for b in bodies]


def test_backoff_doubles_up_to_its_ceiling_and_resets() -> None:
    backoff = Backoff(0.05, 0.15)
    assert backoff.ready()
    backoff.failed()
    assert not backoff.ready()
    assert backoff._wait == pytest.approx(0.1)
    backoff.failed()
    backoff.failed()
    assert backoff._wait == pytest.approx(0.15), "the wait never grows past the ceiling"
    backoff.reset()
    assert backoff.ready() and backoff._wait == pytest.approx(0.05)


async def test_a_failed_connect_is_not_retried_before_the_backoff_then_is() -> None:
    toy = ToyBroker()
    toy.up = False
    adapter = ToyPubSub(toy)
    with pytest.raises(PubSubUnavailable, match="cannot be reached: Down"):
        await adapter.open()
    with pytest.raises(PubSubUnavailable, match="is unavailable"):
        await adapter.publish("t", messages(b"a"))
    assert toy.connects == 1, "a publish inside the backoff must fail at once, without connecting"
    toy.up = True
    await asyncio.sleep(0.25)
    await adapter.publish("t", messages(b"a"))
    assert toy.connects == 2 and [m.body for m in toy.topics["t"]] == [b"a"]
    await adapter.close()


async def test_concurrent_callers_share_one_connection_attempt() -> None:
    toy = ToyBroker()
    adapter = ToyPubSub(toy)
    adapter._open = True  # opened lazily by the first callers, as after a failed open
    await asyncio.gather(*(adapter.publish("t", messages(b"x")) for _ in range(5)))
    assert toy.connects == 1
    await adapter.close()


async def test_publish_sorts_failures_outages_into_one_unavailable_bugs_propagate() -> None:
    toy = ToyBroker()
    toy.refuse = {b"b"}
    adapter = ToyPubSub(toy)
    await adapter.open()
    with pytest.raises(PubSubUnavailable, match=r"Toy did not confirm 1 of 3 messages on 't'"):
        await adapter.publish("t", messages(b"a", b"b", b"c"))
    with pytest.raises(TypeError, match="a bug"):
        await adapter.publish("t", messages(b"bug"))
    await adapter.publish("t", [])
    await adapter.close()


async def test_use_before_open_and_after_close_is_unavailable_and_close_is_idempotent() -> None:
    toy = ToyBroker()
    adapter = ToyPubSub(toy)
    with pytest.raises(PubSubUnavailable, match="not open"):
        await adapter.subscribe("t", group="g")
    await adapter.close()  # never opened: nothing to do
    await adapter.open()
    await adapter.close()
    await adapter.close()
    assert toy.settlements == ["disconnected"]
    with pytest.raises(PubSubUnavailable, match="closed"):
        await adapter.publish("t", messages(b"x"))


async def test_deliveries_settle_once_and_unsettled_ones_go_back_when_the_member_leaves() -> None:
    toy = ToyBroker()
    adapter = ToyPubSub(toy)
    await adapter.open()
    member = await adapter.subscribe("t", group="g")
    assert adapter.subscriptions == {member}
    for body in (b"one", b"two", b"three"):
        await member.receive(Message(body))
    iterator = aiter(member)
    one, two, _three = [await anext(iterator) for _ in range(3)]
    await one.ack()
    await one.ack()
    await one.nack()
    await two.nack()
    await adapter.close()  # closes the member: "three" is still unsettled
    await member.close()
    assert toy.settlements == ["ack one", "nack two", "left g", "release three", "disconnected"]
    assert adapter.subscriptions == set()


async def test_a_settlement_the_broker_cannot_take_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    toy = ToyBroker()
    adapter = ToyPubSub(toy)
    await adapter.open()
    member = await adapter.subscribe("t", group="g")
    await member.receive(Message(b"late"))
    delivery = await anext(aiter(member))
    toy.up = False
    with caplog.at_level(logging.WARNING, "core.pubsub.toy"):
        await delivery.ack()
    assert "ack of a delivery on 't' not sent" in caplog.text and "it will come again" in caplog.text
    await adapter.close()


async def test_a_member_that_cannot_start_is_closed_and_an_outage_is_unavailable() -> None:
    toy = ToyBroker()
    adapter = ToyPubSub(toy)
    await adapter.open()
    ToySubscription.fail_start = Down("no queue")
    try:
        with pytest.raises(PubSubUnavailable, match="could not add a member of group 'g' on 't'"):
            await adapter.subscribe("t", group="g")
        ToySubscription.fail_start = ValueError("bad settings")
        with pytest.raises(ValueError, match="bad settings"):
            await adapter.subscribe("t", group="h")
    finally:
        ToySubscription.fail_start = None
    assert toy.settlements == ["left g", "left h"] and adapter.subscriptions == set()
    await adapter.close()
