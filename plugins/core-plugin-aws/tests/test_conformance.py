"""The pub/sub conformance kit of ``core`` against a moto server."""

from __future__ import annotations

import pytest
from core.testing import PubSubSuite


class TestAwsConformance(PubSubSuite):
    @pytest.fixture
    def adapter_url(self, aws_url: str) -> str:
        return aws_url
