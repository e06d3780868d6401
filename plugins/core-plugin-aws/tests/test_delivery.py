"""At-least-once delivery beyond the conformance kit: the kit's broker suites (busy and killed
members, dead letters) and what is SQS's own: an unsettled delivery is kept by its member past
its visibility timeout (the adapter extends it), a poison message whose member never settles it
is moved by the redrive policy to the dead-letter queue, and dead-letter topics redeliver
without a limit."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import ClassVar

import pytest
from core.brokers import DEAD_DELIVERIES, DEAD_GROUP, DEAD_TOPIC
from core.testing import BrokerDeliverySuite, Clients, DeadLetterSuite, Inbox
from hookspecs import Delivery, Message

from core_plugin_aws._subscription import AwsDelivery


class AwsAdapter:
    """The adapter under test (mixed into the kit's suites) and its delivery count."""

    delivery_timeout: ClassVar[float] = 20.0
    #: At least once, as SQS standard queues are (see test_conformance.py).
    duplicates: ClassVar[bool] = True

    @pytest.fixture
    def adapter_url(self, aws_url: str) -> str:
        return aws_url

    def deliveries(self, delivery: Delivery) -> int:
        assert isinstance(delivery, AwsDelivery)
        return delivery.deliveries


class TestDelivery(AwsAdapter, BrokerDeliverySuite):
    one_at_a_time: ClassVar[Mapping[str, object]] = {"max_messages": 1}
    #: A delivery held by a killed process comes back after its visibility timeout.
    redelivery_options: ClassVar[Mapping[str, object]] = {"ack_deadline": 2}

    @pytest.mark.slow
    async def test_an_unsettled_delivery_is_kept_past_its_visibility_timeout(
        self, clients: Clients, inbox: Inbox, topic: str, group: str
    ) -> None:
        adapter = await clients(ack_deadline=2)
        inbox.follow(await adapter.subscribe(topic, group=group), "a")
        inbox.follow(await adapter.subscribe(topic, group=group), "b")
        await adapter.publish(topic, [Message(b"a long load")])
        [(_, held)] = await inbox.take(1)
        await asyncio.sleep(6)  # three timeouts: extended by the member meanwhile
        assert await inbox.quiet() == [], "an unsettled delivery was delivered again while its member lived"
        await held.ack()

    @pytest.mark.slow
    async def test_a_message_never_settled_is_moved_to_the_dead_letter_queue_by_the_redrive_policy(
        self, clients: Clients, inbox: Inbox, topic: str, group: str
    ) -> None:
        # Each receive lets the visibility timeout expire (the member is closed without settling,
        # as a process dying on a poison message would); the third receive finds it redriven.
        for _ in range(2):
            dying = await clients(ack_deadline=1, max_deliveries=2)
            deliveries = aiter(await dying.subscribe(topic, group=group))
            if _ == 0:
                await dying.publish(topic, [Message(b"kills its consumer", {"kind": "poison"})])
            delivery = await asyncio.wait_for(anext(deliveries), self.delivery_timeout)
            assert isinstance(delivery, AwsDelivery) and delivery.message.body == b"kills its consumer"
            delivery.settle()  # forgotten, not released: it comes back only after the timeout
            await dying.close()
            await asyncio.sleep(1.5)
        adapter = await clients(ack_deadline=1, max_deliveries=2)
        inbox.follow(await adapter.subscribe(topic, group=group), "member")
        inbox.follow(await adapter.subscribe(f"dead.{topic}", group="dead-letters"), "dead")
        [(who, dead)] = await inbox.take(1)
        assert (who, dead.message.body, dead.message.attributes["kind"]) == ("dead", b"kills its consumer", "poison")
        assert dead.message.attributes[DEAD_TOPIC] == topic
        assert DEAD_GROUP in dead.message.attributes
        await dead.ack()
        assert await inbox.quiet() == []


class TestDeadLetters(AwsAdapter, DeadLetterSuite):
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
