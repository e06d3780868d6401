"""The service goes away and comes back: the kit's outage suite (publish fails fast meanwhile,
nothing is lost after; an adapter opened while it is down connects when it is back).

These tests stop the session's own moto server process and always start it again, on the same
port. moto keeps nothing across a restart, so the adapter also makes its topics, queues and
subscriptions again (real SNS and SQS keep them through an outage).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import ClassVar

import pytest
from core.testing import BrokerOutageSuite, free_port

pytestmark = pytest.mark.slow


class TestOutage(BrokerOutageSuite):
    connect_options: ClassVar[Mapping[str, object]] = {"connect_timeout": 0.5}

    @pytest.fixture
    def adapter_url(self, aws_url: str) -> str:
        return aws_url

    @pytest.fixture
    def broker_stopped(
        self, moto_stopped: Callable[[], AbstractContextManager[None]]
    ) -> Callable[[], AbstractContextManager[None]]:
        return moto_stopped

    @pytest.fixture
    def unreachable_url(self) -> str:
        return (f"aws://?region=us-east-1&endpoint_url=http://127.0.0.1:{free_port()}"
                "&connect_timeout=0.5&reconnect_wait=0.1")
