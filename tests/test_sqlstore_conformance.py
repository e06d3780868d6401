"""The built-in SQLite store passes the store conformance kit (on a file: the kit checks
durability across a reopen and several clients of one database, which an in-memory
database cannot offer; ``tests/test_sqlstore_sqlite.py`` covers ``:memory:``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.testing import StoreSuite


class TestSQLiteStore(StoreSuite):
    @pytest.fixture
    def adapter_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'conformance' / 'store.db'}"
