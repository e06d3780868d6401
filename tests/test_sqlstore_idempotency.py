"""What the SQL store adds to the kit's idempotency checks: the schema step from version 1,
purge removing ended keys, one claim statement per commit, and ``:memory:`` (the async path)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import event

from core.builtin.sqlite.store import SQLiteStore
from core.testing import Names
from core.testing._store_idempotency import keyed
from core.testing.data import later, utcnow
from hookspecs import Duplicate, Queue
from tests.sqlstore_kit import db_path, db_url, rows, upgraded_from


async def test_a_version_1_database_gets_the_keys_table_and_the_job_column(tmp_path: Path) -> None:
    undo = "DROP TABLE idempotency_keys", "ALTER TABLE jobs DROP COLUMN idempotency_key"
    async with upgraded_from(tmp_path, 1, *undo) as (store, old):
        job = await store.get_job(old.jobs[0].id)
        assert job is not None and job.idempotency_key is None
        names = Names.unique()
        first, retry = keyed(names, "k"), keyed(names, "k")
        assert await store.insert_queue(Queue(events=[first])) == []
        assert await store.insert_queue(Queue(events=[retry])) == [Duplicate(retry.id, first.id, "k", same=True)]


async def test_purge_removes_the_keys_whose_window_ended(tmp_path: Path) -> None:
    store = SQLiteStore(db_url(tmp_path))
    await store.open()
    try:
        names = Names.unique()
        ended = [keyed(names, f"old{i}", expires_at=later(utcnow(), -1)) for i in range(3)]
        await store.insert_queue(Queue(events=[*ended, keyed(names, "live")]))
        await store.purge(before=later(utcnow(), -86400))
        assert rows(db_path(store), "SELECT key FROM idempotency_keys") == [("live",)]
    finally:
        await store.close()


async def test_one_commit_claims_its_keys_in_one_statement(tmp_path: Path) -> None:
    store = SQLiteStore(db_url(tmp_path), commit_delay_ms=20)
    await store.open()
    try:
        assert store._writer_thread is not None
        statements: list[str] = []
        event.listen(store._writer_thread._engine, "before_cursor_execute",
                     lambda conn, cursor, sql, *args: statements.append(sql))
        names = Names.unique()
        answers = await asyncio.gather(*(store.insert_queue(Queue(events=[keyed(names, f"k{i}")]))
                                         for i in range(50)))
        assert answers == [[]] * 50 and store.stats.transactions == 1
        assert sum("idempotency_keys" in sql for sql in statements) == 1, statements
    finally:
        await store.close()


async def test_keys_deduplicate_on_an_in_memory_database() -> None:
    store = SQLiteStore("sqlite:///:memory:")
    await store.open()
    try:
        names = Names.unique()
        first, retry = keyed(names, "k"), keyed(names, "k", "other")
        await store.insert_queue(Queue(events=[first]))
        assert await store.insert_queue(Queue(events=[retry])) == [Duplicate(retry.id, first.id, "k", same=False)]
    finally:
        await store.close()
