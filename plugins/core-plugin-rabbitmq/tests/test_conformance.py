"""The pub/sub conformance kit of ``core`` against the real RabbitMQ."""

from __future__ import annotations

import pytest
from core.testing import PubSubSuite


class TestRabbitConformance(PubSubSuite):
    @pytest.fixture
    def adapter_url(self, rabbitmq_url: str) -> str:
        return rabbitmq_url
