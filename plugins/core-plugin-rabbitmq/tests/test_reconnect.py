"""The broker goes away and comes back: the kit's outage suite (publish fails fast meanwhile,
nothing is lost after; an adapter opened while it is down connects when it is back).

They run on the session's own RabbitMQ node (``private_rabbitmq``), whose application they stop
(``rabbitmqctl -n <node> stop_app``) and always start again; the shared broker is never touched.
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
    def adapter_url(self, private_rabbitmq_url: str) -> str:
        return private_rabbitmq_url

    @pytest.fixture
    def broker_stopped(
        self, rabbitmq_stopped: Callable[[], AbstractContextManager[None]]
    ) -> Callable[[], AbstractContextManager[None]]:
        return rabbitmq_stopped

    @pytest.fixture
    def unreachable_url(self) -> str:
        return f"amqp://127.0.0.1:{free_port()}/?connect_timeout=0.5&reconnect_wait=0.1"
