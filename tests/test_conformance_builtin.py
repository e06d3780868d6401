"""The built-in adapters pass the conformance kit, which tests the kit itself too."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

import core
from core.testing import DestinationSuite, PubSubSuite, SourceSuite, SupervisorProcessSuite, SupervisorSuite
from hookspecs import Destination, HttpRequest, Source


class TestMemoryPubSub(PubSubSuite):
    @pytest.fixture
    def adapter_url(self) -> str:
        return "memory://conformance"


class TestLocalSupervisor(SupervisorSuite):
    short_ttl = 0.3

    @pytest.fixture
    def adapter_url(self, tmp_path: Path) -> str:
        return f"local://{tmp_path.name}"


class TestSQLiteSupervisor(SupervisorSuite, SupervisorProcessSuite):
    short_ttl = 0.3

    @pytest.fixture
    def adapter_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/core.db"


def _quickstart() -> ModuleType:
    """The quickstart pipeline shipped with ``core init`` (package data, not a package)."""
    path = Path(core.__file__).parent / "scaffold" / "quickstart" / "pipeline.py"
    spec = importlib.util.spec_from_file_location("quickstart_pipeline_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


QUICKSTART = _quickstart()


class TestQuickstartSources(SourceSuite):
    @pytest.fixture(params=["shop", "clock"])
    def source(self, request: pytest.FixtureRequest) -> Source:
        return next(s for s in QUICKSTART.core_register_sources() if s.name == request.param)

    @pytest.fixture
    def http_samples(self, source: Source) -> dict[str, list[HttpRequest]]:
        if source.name != "shop":
            return {}
        body = b'{"data": {"order": 1}}'
        return {"orders": [HttpRequest("POST", "/webhooks/orders", {"content-type": "application/json"}, {}, body)]}


class TestQuickstartDestinations(DestinationSuite):
    """``warehouse.insert`` loads into an endpoint that is not running: a Then with an error."""

    @pytest.fixture(params=["logger", "warehouse", "alerts"])
    def destination(self, request: pytest.FixtureRequest) -> Destination:
        return next(d for d in QUICKSTART.core_register_destinations() if d.name == request.param)
