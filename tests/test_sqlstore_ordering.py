"""The SQL store's ordering keys beyond the kit's checks: the schema step from version 4."""

from __future__ import annotations

from pathlib import Path

from hookspecs import Claim
from tests.sqlstore_kit import db_path, rows, upgraded_from


async def test_a_version_4_database_gets_the_ordering_key_column_and_index(tmp_path: Path) -> None:
    undo = "DROP INDEX ix_jobs_ordering", "ALTER TABLE jobs DROP COLUMN ordering_key"
    async with upgraded_from(tmp_path, 4, *undo) as (store, old):
        assert rows(db_path(store), "SELECT name FROM sqlite_master WHERE name = 'ix_jobs_ordering'") == [
            ("ix_jobs_ordering",)]
        job = old.jobs[0]
        claimed = await store.claim(Claim(owner="t", lease_seconds=60), destination=job.destination,
                                    action=job.action, limit=10, now=job.created_at)
        assert [(j.id, j.ordering_key) for j in claimed] == [(job.id, None)], "an old job was not claimable"
