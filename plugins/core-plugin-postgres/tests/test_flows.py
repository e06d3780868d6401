"""Disabled flows on PostgreSQL beyond the kit's checks: the schema step from version 3."""

from __future__ import annotations

import asyncpg
from core.sqlstore import SCHEMA_VERSION
from core.testing import make_event, utcnow
from hookspecs import DisabledFlow, Queue

from core_plugin_postgres._pg import dsn
from core_plugin_postgres.store import PostgresStore


async def test_a_version_3_database_gets_the_disabled_flows_table(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    old = make_event(source="shop")
    await store.insert_queue(Queue(events=[old]))
    await store.close()
    conn = await asyncpg.connect(dsn(pg_url))
    try:  # as release 3 left it
        await conn.execute("DROP TABLE disabled_flows; "
                           "UPDATE schema_versions SET version = 3 WHERE component = 'store'")
    finally:
        await conn.close()
    await store.open()
    try:
        assert await store.get_event(old.id) is not None
        assert await store.disabled_flows() == []
        assert await store.disable_flow(DisabledFlow(flow="shop-to-crm", who="ops", created_at=utcnow())) is True
        assert [d.flow for d in await store.disabled_flows()] == ["shop-to-crm"]
        conn = await asyncpg.connect(dsn(pg_url))
        try:
            version = await conn.fetchval("SELECT version FROM schema_versions WHERE component = 'store'")
            assert version == SCHEMA_VERSION
        finally:
            await conn.close()
    finally:
        await store.close()
