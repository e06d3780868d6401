"""The pub/sub conformance kit of ``core`` against the official Pub/Sub emulator."""

from __future__ import annotations

import pytest
from core.testing import PubSubSuite


class TestGoogleConformance(PubSubSuite):
    @pytest.fixture
    def adapter_url(self, google_url: str) -> str:
        return google_url
