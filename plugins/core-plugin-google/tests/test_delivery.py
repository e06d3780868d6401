"""At-least-once delivery beyond the conformance kit: the kit's broker suites (busy and killed
members, dead letters) and what is Pub/Sub's own: an unsettled delivery is kept by its member
past the ack deadline (the adapter extends it), and dead-letter topics redeliver without a
limit."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import ClassVar

import pytest
from core.brokers import DEAD_DELIVERIES
from core.testing import BrokerDeliverySuite, Clients, DeadLetterSuite, Inbox
from hookspecs import Delivery, Message

from core_plugin_google._subscription import GoogleDelivery


class GoogleAdapter:
    """The adapter under test (mixed into the kit's suites) and its delivery count."""

    delivery_timeout: ClassVar[float] = 30.0

    @pytest.fixture
    def adapter_url(self, google_url: str) -> str:
        return google_url

    def deliveries(self, delivery: Delivery) -> int:
        assert isinstance(delivery, GoogleDelivery)
        return delivery.deliveries


class TestDelivery(GoogleAdapter, BrokerDeliverySuite):
    one_at_a_time: ClassVar[Mapping[str, object]] = {"max_messages": 1}
    #: A delivery held by a killed process comes back after its ack deadline (10 s at least).
    redelivery_options: ClassVar[Mapping[str, object]] = {"ack_deadline": 10}

    @pytest.mark.slow
    async def test_an_unsettled_delivery_is_kept_past_its_ack_deadline(
        self, clients: Clients, inbox: Inbox, topic: str, group: str
    ) -> None:
        adapter = await clients(ack_deadline=10)
        inbox.follow(await adapter.subscribe(topic, group=group), "a")
        inbox.follow(await adapter.subscribe(topic, group=group), "b")
        await adapter.publish(topic, [Message(b"a long load")])
        [(_, held)] = await inbox.take(1)
        await asyncio.sleep(15)  # past the deadline: extended by the member meanwhile
        assert await inbox.quiet() == [], "an unsettled delivery was delivered again while its member lived"
        await held.ack()


class TestDeadLetters(GoogleAdapter, DeadLetterSuite):
    def check_dead_letter(self, attributes: Mapping[str, str]) -> None:
        assert attributes[DEAD_DELIVERIES] == "2"

    async def test_a_dead_letter_topic_redelivers_without_a_limit(
        self, clients: Clients, inbox: Inbox, topic: str
    ) -> None:
        adapter = await clients(max_deliveries=1)
        inbox.follow(await adapter.subscribe(f"dead.{topic}", group="dead-letters"), "dead")
        await adapter.publish(f"dead.{topic}", [Message(b"kept")])
        for _ in range(3):
            [(_, delivery)] = await inbox.take(1)
            await delivery.nack()
        [(_, delivery)] = await inbox.take(1)
        await delivery.ack()
