"""At-least-once delivery beyond the conformance kit: the kit's broker suites (busy and killed
members, dead letters) and what is NATS's own: a delivery never settled comes back after
``ack_wait``, and past ``max_deliveries`` it is dead-lettered without a nack."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest
from core.brokers import DEAD_DELIVERIES
from core.testing import BrokerDeliverySuite, Clients, DeadLetterSuite, Inbox
from hookspecs import Delivery, Message

from core_plugin_nats._subscription import NatsDelivery


class NatsAdapter:
    """The adapter under test (mixed into the kit's suites) and its delivery count."""

    @pytest.fixture
    def adapter_url(self, nats_url: str) -> str:
        return nats_url

    def deliveries(self, delivery: Delivery) -> int:
        assert isinstance(delivery, NatsDelivery)
        return delivery.deliveries


class TestDelivery(NatsAdapter, BrokerDeliverySuite):
    one_at_a_time: ClassVar[Mapping[str, object]] = {"batch": 1}
    #: A delivery held by a killed process comes back after ack_wait.
    redelivery_options: ClassVar[Mapping[str, object]] = {"ack_wait": 1}


class TestDeadLetters(NatsAdapter, DeadLetterSuite):
    def check_dead_letter(self, attributes: Mapping[str, str]) -> None:
        assert attributes[DEAD_DELIVERIES] == "2"

    async def test_a_message_redelivered_past_the_limit_without_a_nack_is_dead_lettered(
        self, clients: Clients, inbox: Inbox, topic: str, group: str
    ) -> None:
        adapter = await clients(max_deliveries=1, ack_wait=1)
        inbox.follow(await adapter.subscribe(topic, group=group), "stuck")
        inbox.follow(await adapter.subscribe(f"dead.{topic}", group="inspector"), "dead")
        await adapter.publish(topic, [Message(b"never settled")])
        [(who, _)] = await inbox.take(1)  # held and never settled: back after ack_wait, once too often
        assert who == "stuck"
        [(who, dead)] = await inbox.take(1)
        assert (who, dead.message.body, dead.message.attributes[DEAD_DELIVERIES]) == ("dead", b"never settled", "2")
        await dead.ack()
        assert await inbox.quiet() == []
