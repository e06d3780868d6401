"""The pub/sub conformance kit of ``core`` against the real NATS JetStream."""

from __future__ import annotations

import pytest
from core.testing import PubSubSuite


class TestNatsConformance(PubSubSuite):
    @pytest.fixture
    def adapter_url(self, nats_url: str) -> str:
        return nats_url
