"""Idempotency keys on PostgreSQL, as real processes: 1,000 concurrent posts with one key,
through two ``core start gateway`` processes on one database, store exactly one event and
all answer ``202`` with its id (issue 16's done-when; the kit's store suite covers the rest);
and the schema step that brings a version-1 database to the keys."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from core.testing import Deployment, make_event, utcnow
from hookspecs import Duplicate, IdempotencyKey, Queue

from core_plugin_postgres._pg import dsn
from core_plugin_postgres.store import PostgresStore


@pytest.mark.timeout(240)
def test_one_key_through_two_gateways_stores_one_event(pg_url: str, tmp_path: Path) -> None:
    with Deployment(tmp_path, store=pg_url, pubsub="memory://") as deploy:
        deploy.check_one_key_stores_one_event(gateways=2, posts=1000)


async def test_a_version_1_database_gets_the_keys_table_and_the_job_column(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    old = make_event(source="shop")
    await store.insert_queue(Queue(events=[old]))
    await store.close()
    conn = await asyncpg.connect(dsn(pg_url))
    try:  # as release 1 left it
        await conn.execute("DROP TABLE idempotency_keys; ALTER TABLE jobs DROP COLUMN idempotency_key; "
                           "UPDATE schema_versions SET version = 1 WHERE component = 'store'")
    finally:
        await conn.close()
    await store.open()
    try:
        job = await store.get_job(old.jobs[0].id)
        assert job is not None and job.idempotency_key is None
        events = [make_event(source="shop") for _ in range(2)]
        for event in events:
            event.idempotency = IdempotencyKey("k", "f", utcnow() + timedelta(seconds=60))
        assert await store.insert_queue(Queue(events=events)) == [Duplicate(events[1].id, events[0].id, "k", True)]
    finally:
        await store.close()
