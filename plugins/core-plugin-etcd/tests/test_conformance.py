"""The supervisor conformance kit of ``core`` against a real etcd server."""

from __future__ import annotations

from typing import ClassVar

import pytest
from core.testing import SupervisorProcessSuite, SupervisorSuite


class TestEtcdConformance(SupervisorSuite, SupervisorProcessSuite):
    short_ttl: ClassVar[float] = 2.0  # etcd's minimum lease TTL on a default single-node cluster

    @pytest.fixture
    def adapter_url(self, etcd_url: str) -> str:
        return etcd_url
