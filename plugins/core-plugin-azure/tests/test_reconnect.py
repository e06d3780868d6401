"""The service goes away and comes back: the kit's outage suite (publish fails fast meanwhile,
nothing is lost after; an adapter opened while it is down connects when it is back).

These tests stop the session's own stand-in process and always start it again, on the same
port; like Service Bus it keeps its entities and messages across the restart (a state file).
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
    def adapter_url(self, azure_url: str) -> str:
        return azure_url

    @pytest.fixture
    def broker_stopped(
        self, standin_stopped: Callable[[], AbstractContextManager[None]]
    ) -> Callable[[], AbstractContextManager[None]]:
        return standin_stopped

    @pytest.fixture
    def unreachable_url(self, monkeypatch: pytest.MonkeyPatch) -> str:
        monkeypatch.setenv("CORE_AZURE_UNREACHABLE", f"Endpoint=sb://127.0.0.1:{free_port()};SharedAccessKeyName=k;"
                           "SharedAccessKey=not-a-key;UseDevelopmentEmulator=true")
        return "azure://?connection_string_env=CORE_AZURE_UNREACHABLE&connect_timeout=0.5&reconnect_wait=0.1"
