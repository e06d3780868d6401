"""The built-in SQL wanderer passes the wanderer conformance kit."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.testing import WandererSuite


class TestSQLWanderer(WandererSuite):
    @pytest.fixture
    def adapter_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'state' / 'core.db'}"
