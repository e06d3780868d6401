"""The conformance kit of ``core.testing``, run against the PostgreSQL adapters.

Each suite builds its adapters through the installed plugin's registration from the URL of
this test's own database, so the entry point and the factories are exercised too.
"""

from __future__ import annotations

from typing import Any

import pytest
from core.testing import (
    PubSubSuite,
    StoreModelSuite,
    StoreSuite,
    SupervisorProcessSuite,
    SupervisorSuite,
    WandererSuite,
)


class TestSupervisor(SupervisorSuite, SupervisorProcessSuite):
    @pytest.fixture
    def adapter_url(self, pg_url: str) -> str:
        return pg_url


class TestPubSub(PubSubSuite):
    @pytest.fixture
    def adapter_url(self, pg_url: str) -> str:
        return pg_url


class TestStore(StoreSuite):
    @pytest.fixture
    def adapter_url(self, pg_url: str) -> str:
        return pg_url


class TestStoreCopying(StoreSuite):
    """The same suite with every batch written through COPY."""

    @pytest.fixture
    def adapter_url(self, pg_url: str) -> str:
        return pg_url

    @pytest.fixture
    def adapter_options(self) -> dict[str, Any]:
        return {"copy_threshold": 1}


class TestStoreModel(StoreModelSuite):
    """The model-based test: every example opens a store on this test's database."""

    @pytest.fixture
    def adapter_url(self, pg_url: str) -> str:
        return pg_url


class TestWanderer(WandererSuite):
    @pytest.fixture
    def adapter_url(self, pg_url: str) -> str:
        return pg_url
