"""The pub/sub conformance kit of ``core`` against a moto server."""

from __future__ import annotations

import pytest
from core.testing import PubSubSuite


class TestAwsConformance(PubSubSuite):
    #: SQS standard queues are at least once: "occasionally more than one copy of a message is
    #: delivered", and the moto server hands one message to two concurrent receives now and then.
    duplicates = True

    @pytest.fixture
    def adapter_url(self, aws_url: str) -> str:
        return aws_url
