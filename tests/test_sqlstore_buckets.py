"""Token buckets on SQLite beyond the kit's checks: the schema step from version 4."""

from __future__ import annotations

from pathlib import Path

from core.testing.data import utcnow
from tests.sqlstore_kit import upgraded_from


async def test_a_version_4_database_gets_the_rate_buckets_table(tmp_path: Path) -> None:
    async with upgraded_from(tmp_path, 4, "DROP TABLE rate_buckets") as (store, old):
        assert await store.get_event(old.id) is not None
        assert await store.take_tokens("crm.send", 5, rate=1.0, burst=2, now=utcnow()) == 2
