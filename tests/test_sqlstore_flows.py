"""The SQL store's disabled flows beyond the kit's checks: the schema step from version 3."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.builtin.sqlite.store import SQLiteStore
from core.sqlstore.schema import SCHEMA_VERSION
from core.testing.data import utcnow
from hookspecs import DisabledFlow
from tests.sqlstore_kit import db_path, db_url, insert, rows


async def test_a_version_3_database_gets_the_disabled_flows_table(tmp_path: Path) -> None:
    store = SQLiteStore(db_url(tmp_path))
    await store.open()
    [old] = await insert(store, 1)
    await store.close()
    with sqlite3.connect(tmp_path / "state" / "core.db") as conn:  # as release 3 left it
        conn.execute("DROP TABLE disabled_flows")
        conn.execute("UPDATE schema_versions SET version = 3 WHERE component = 'store'")
    await store.open()
    try:
        assert rows(db_path(store), "SELECT version FROM schema_versions WHERE component = 'store'") == [
            (SCHEMA_VERSION,)]
        assert await store.get_event(old.id) is not None
        assert await store.disabled_flows() == []
        assert await store.disable_flow(DisabledFlow(flow="web-to-crm", who="ops", created_at=utcnow())) is True
        assert [d.flow for d in await store.disabled_flows()] == ["web-to-crm"]
    finally:
        await store.close()
