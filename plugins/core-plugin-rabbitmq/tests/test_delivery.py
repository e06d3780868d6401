"""At-least-once delivery beyond the conformance kit: the kit's broker suites (busy and killed
members, dead letters) and what is RabbitMQ's own: a queue's delivery limit cannot change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest
from core.brokers import DEAD_REASON
from core.testing import BrokerDeliverySuite, Clients, DeadLetterSuite
from hookspecs import ConfigError, Delivery, Message

from core_plugin_rabbitmq._subscription import RabbitDelivery


class RabbitAdapter:
    """The adapter under test (mixed into the kit's suites) and its delivery count."""

    @pytest.fixture
    def adapter_url(self, rabbitmq_url: str) -> str:
        return rabbitmq_url

    def deliveries(self, delivery: Delivery) -> int:
        assert isinstance(delivery, RabbitDelivery)
        return delivery.deliveries


class TestDelivery(RabbitAdapter, BrokerDeliverySuite):
    one_at_a_time: ClassVar[Mapping[str, object]] = {"prefetch": 1}


class TestDeadLetters(RabbitAdapter, DeadLetterSuite):
    def check_dead_letter(self, attributes: Mapping[str, str]) -> None:
        assert attributes[DEAD_REASON] == "delivery_limit"

    async def test_changing_max_deliveries_of_an_existing_queue_says_what_to_do(
        self, clients: Clients, topic: str, group: str
    ) -> None:
        first = await clients(max_deliveries=2)
        await (await first.subscribe(topic, group=group)).close()
        second = await clients(max_deliveries=5)
        with pytest.raises(ConfigError, match="delete that queue"):
            await second.subscribe(topic, group=group)
        await second.publish(topic, [Message(b"the adapter still works")])
