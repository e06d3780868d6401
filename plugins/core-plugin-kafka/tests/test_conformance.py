"""The pub/sub conformance kit of ``core`` against a Kafka-protocol broker (the librdkafka mock cluster)."""

from __future__ import annotations

from typing import ClassVar

import pytest
from core.testing import PubSubSuite


class TestKafkaConformance(PubSubSuite):
    #: Joining a consumer group takes a rebalance round; leave room for it.
    delivery_timeout: ClassVar[float] = 20.0

    @pytest.fixture
    def adapter_url(self, kafka_url: str) -> str:
        return kafka_url
