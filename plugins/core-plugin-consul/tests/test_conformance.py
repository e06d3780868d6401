"""The supervisor conformance kit of ``core`` against a real Consul agent."""

from __future__ import annotations

from typing import ClassVar

import pytest
from core.testing import SupervisorProcessSuite, SupervisorSuite


class TestConsulConformance(SupervisorSuite, SupervisorProcessSuite):
    short_ttl: ClassVar[float] = 10.0  # Consul's minimum session TTL
    expiry_timeout: ClassVar[float] = 45.0  # Consul invalidates between TTL and 2xTTL

    @pytest.fixture
    def adapter_url(self, consul_url: str) -> str:
        return consul_url
