"""At-least-once delivery beyond the conformance kit: the kit's broker suites (busy and killed
members, dead letters) and what is Service Bus's own: a held delivery's lock is renewed past
the lock duration, and Service Bus's MaxDeliveryCount (locks that expired) lands in the
dead-letter sub-queue, forwarded to ``dead.<topic>``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import ClassVar

import pytest
from conftest import LOCK_SECONDS
from core.brokers import DEAD_DELIVERIES, DEAD_REASON
from core.testing import BrokerDeliverySuite, Clients, DeadLetterSuite, Inbox
from hookspecs import Delivery, Message

from core_plugin_azure._subscription import AzureDelivery


class AzureAdapter:
    """The adapter under test (mixed into the kit's suites) and its delivery count."""

    delivery_timeout: ClassVar[float] = 30.0

    @pytest.fixture
    def adapter_url(self, azure_url: str) -> str:
        return azure_url

    def deliveries(self, delivery: Delivery) -> int:
        assert isinstance(delivery, AzureDelivery)
        return delivery.deliveries


class TestDelivery(AzureAdapter, BrokerDeliverySuite):
    one_at_a_time: ClassVar[Mapping[str, object]] = {"max_messages": 1}
    #: A delivery held by a killed process comes back when its lock expires (5 s here).
    redelivery_options: ClassVar[Mapping[str, object]] = {}

    @pytest.mark.slow
    async def test_an_unsettled_delivery_is_kept_past_its_lock_duration(
        self, clients: Clients, inbox: Inbox, topic: str, group: str
    ) -> None:
        adapter = await clients()
        inbox.follow(await adapter.subscribe(topic, group=group), "a")
        inbox.follow(await adapter.subscribe(topic, group=group), "b")
        await adapter.publish(topic, [Message(b"a long load")])
        [(_, held)] = await inbox.take(1)
        await asyncio.sleep(LOCK_SECONDS * 3)  # past the lock: renewed by the member meanwhile
        assert await inbox.quiet() == [], "an unsettled delivery was delivered again while its member lived"
        await held.ack()
        assert await inbox.quiet() == []


class TestDeadLetters(AzureAdapter, DeadLetterSuite):
    def check_dead_letter(self, attributes: Mapping[str, str]) -> None:
        assert attributes[DEAD_DELIVERIES] == "2"
        assert attributes[DEAD_REASON] == "MaxDeliveriesExceeded"

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

    @pytest.mark.slow
    async def test_expired_locks_past_max_delivery_count_reach_the_dead_letter_topic(
        self, clients: Clients, inbox: Inbox, topic: str, group: str
    ) -> None:
        """Renewal off: each delivery's lock expires; Service Bus (the stand-in's
        MaxDeliveryCount, 10) or the adapter (max_deliveries=2, on arrival) dead-letters it."""
        adapter = await clients(max_deliveries=2, max_lock_renewal=0)
        inbox.follow(await adapter.subscribe(topic, group=group), "member")
        await adapter.publish(topic, [Message(b"slow poison")])
        for attempt in (1, 2):
            [(_, delivery)] = await inbox.take(1)
            assert self.deliveries(delivery) == attempt  # held, never settled: its lock expires
        inbox.follow(await adapter.subscribe(f"dead.{topic}", group="dead-letters"), "dead")
        [(who, dead)] = await inbox.take(1)
        assert (who, dead.message.body, dead.message.attributes["Core-Dead-Group"]) == ("dead", b"slow poison", group)
        await dead.ack()
