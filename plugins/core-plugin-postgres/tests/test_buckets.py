"""Token buckets on PostgreSQL beyond the kit's checks: the schema step from version 4."""

from __future__ import annotations

import asyncpg
from core.sqlstore import SCHEMA_VERSION
from core.testing import utcnow

from core_plugin_postgres._pg import dsn
from core_plugin_postgres.store import PostgresStore


async def test_a_version_4_database_gets_the_rate_buckets_table(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(dsn(pg_url))
    try:  # as release 4 left it
        await conn.execute("DROP TABLE rate_buckets; UPDATE schema_versions SET version = 4 WHERE component = 'store'")
    finally:
        await conn.close()
    await store.open()
    try:
        assert await store.take_tokens("crm.send", 5, rate=1.0, burst=2, now=utcnow()) == 2
        conn = await asyncpg.connect(dsn(pg_url))
        try:
            version = await conn.fetchval("SELECT version FROM schema_versions WHERE component = 'store'")
            assert version == SCHEMA_VERSION
        finally:
            await conn.close()
    finally:
        await store.close()
