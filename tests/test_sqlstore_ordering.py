"""The SQL store's ordering keys beyond the kit's checks: the schema step from version 4."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.builtin.sqlite.store import SQLiteStore
from core.sqlstore.schema import SCHEMA_VERSION
from hookspecs import Claim
from tests.sqlstore_kit import db_path, db_url, insert, rows


async def test_a_version_4_database_gets_the_ordering_key_column_and_index(tmp_path: Path) -> None:
    store = SQLiteStore(db_url(tmp_path))
    await store.open()
    [old] = await insert(store, 1)
    await store.close()
    with sqlite3.connect(tmp_path / "state" / "core.db") as conn:  # as release 4 left it
        conn.execute("DROP INDEX ix_jobs_ordering")
        conn.execute("ALTER TABLE jobs DROP COLUMN ordering_key")
        conn.execute("UPDATE schema_versions SET version = 4 WHERE component = 'store'")
    await store.open()
    try:
        assert rows(db_path(store), "SELECT version FROM schema_versions WHERE component = 'store'") == [
            (SCHEMA_VERSION,)]
        assert rows(db_path(store), "SELECT name FROM sqlite_master WHERE name = 'ix_jobs_ordering'") == [
            ("ix_jobs_ordering",)]
        job = old.jobs[0]
        claimed = await store.claim(Claim(owner="t", lease_seconds=60), destination=job.destination,
                                    action=job.action, limit=10, now=job.created_at)
        assert [(j.id, j.ordering_key) for j in claimed] == [(job.id, None)], "an old job was not claimable"
    finally:
        await store.close()
