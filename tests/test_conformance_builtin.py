"""The built-in adapters pass the conformance kit, which tests the kit itself too."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.testing import PubSubSuite, SupervisorSuite


class TestMemoryPubSub(PubSubSuite):
    @pytest.fixture
    def adapter_url(self) -> str:
        return "memory://conformance"


class TestLocalSupervisor(SupervisorSuite):
    short_ttl = 0.3

    @pytest.fixture
    def adapter_url(self, tmp_path: Path) -> str:
        return f"local://{tmp_path.name}"
