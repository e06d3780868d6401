"""The pub/sub conformance kit of ``core`` against the Service Bus stand-in, through the SDK."""

from __future__ import annotations

import pytest
from core.testing import PubSubSuite


class TestAzureConformance(PubSubSuite):
    @pytest.fixture
    def adapter_url(self, azure_url: str) -> str:
        return azure_url
