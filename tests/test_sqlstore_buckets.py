"""Token buckets on SQLite beyond the kit's checks: the schema step from version 4."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.builtin.sqlite.store import SQLiteStore
from core.sqlstore.schema import SCHEMA_VERSION
from core.testing.data import utcnow
from tests.sqlstore_kit import db_path, db_url, insert, rows


async def test_a_version_4_database_gets_the_rate_buckets_table(tmp_path: Path) -> None:
    store = SQLiteStore(db_url(tmp_path))
    await store.open()
    [old] = await insert(store, 1)
    await store.close()
    with sqlite3.connect(tmp_path / "state" / "core.db") as conn:  # as release 4 left it
        conn.execute("DROP TABLE rate_buckets")
        conn.execute("UPDATE schema_versions SET version = 4 WHERE component = 'store'")
    await store.open()
    try:
        assert rows(db_path(store), "SELECT version FROM schema_versions WHERE component = 'store'") == [
            (SCHEMA_VERSION,)]
        assert await store.get_event(old.id) is not None
        assert await store.take_tokens("crm.send", 5, rate=1.0, burst=2, now=utcnow()) == 2
    finally:
        await store.close()
