"""The CDC source against a real server: row changes become events, across restarts too."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
from hookspecs import EventDraft, Toolkit

from core_plugin_postgres import PostgresCdcTrigger, postgres_cdc_source

TOOLKIT = Toolkit(logger=logging.getLogger("test.cdc"), service="gateway")


class Sink:
    """Stands for the gateway's emit: keeps the drafts, can be told to fail."""

    def __init__(self) -> None:
        self.drafts: list[EventDraft] = []
        self.failures = 0

    async def emit(self, drafts: Sequence[EventDraft]) -> list[str]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store unavailable")
        self.drafts.extend(drafts)
        return [f"id{len(self.drafts) - i}" for i in range(len(drafts))]

    async def wait_for(self, count: int) -> list[EventDraft]:
        deadline = asyncio.get_running_loop().time() + 10
        while len(self.drafts) < count:
            assert asyncio.get_running_loop().time() < deadline, f"got {len(self.drafts)} of {count} events"
            await asyncio.sleep(0.02)
        return self.drafts


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_url)
    await conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric, note text)")
    yield conn
    await conn.close()


async def start(trigger: PostgresCdcTrigger, sink: Sink) -> asyncio.Task[None]:
    await trigger.install()
    return asyncio.ensure_future(trigger.listen(TOOLKIT, sink.emit))


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_insert_update_delete_become_events(pg_url: str, db: asyncpg.Connection) -> None:
    sink = Sink()
    task = await start(PostgresCdcTrigger("orders", pg_url, ["orders"], poll_interval=30), sink)
    try:
        await db.execute("INSERT INTO orders VALUES (1, 9.5, 'a')")
        await db.execute("UPDATE orders SET note = 'b' WHERE id = 1")
        await db.execute("DELETE FROM orders WHERE id = 1")
        insert, update, delete = await sink.wait_for(3)
    finally:
        await stop(task)
    assert [d.name for d in (insert, update, delete)] == ["orders.insert", "orders.update", "orders.delete"]
    assert insert.data["old"] is None and insert.data["new"] == {"id": 1, "total": 9.5, "note": "a"}
    assert update.data["old"]["note"] == "a" and update.data["new"]["note"] == "b"
    assert delete.data["old"]["note"] == "b" and delete.data["new"] is None
    assert insert.sent_at is not None and insert.context["cdc"]["consumer"] == "orders"


async def test_only_chosen_operations(pg_url: str, db: asyncpg.Connection) -> None:
    sink = Sink()
    task = await start(PostgresCdcTrigger("deletes", pg_url, ["orders"], operations=["delete"]), sink)
    try:
        await db.execute("INSERT INTO orders VALUES (1, 1, 'a'), (2, 2, 'b')")
        await db.execute("DELETE FROM orders WHERE id = 2")
        [draft] = await sink.wait_for(1)
    finally:
        await stop(task)
    assert draft.name == "orders.delete" and draft.data["old"]["id"] == 2


async def test_nothing_missed_or_repeated_across_a_listener_restart(pg_url: str, db: asyncpg.Connection) -> None:
    sink = Sink()
    trigger = PostgresCdcTrigger("orders", pg_url, ["orders"], batch_size=7)
    task = await start(trigger, sink)
    await db.execute("INSERT INTO orders SELECT g, g, 'first' FROM generate_series(1, 20) g")
    await sink.wait_for(20)
    await stop(task)
    # While nobody listens, the database keeps changing.
    await db.execute("INSERT INTO orders SELECT g, g, 'offline' FROM generate_series(21, 50) g")
    await db.execute("UPDATE orders SET note = 'changed' WHERE id <= 5")
    task = await start(PostgresCdcTrigger("orders", pg_url, ["orders"], batch_size=7), sink)
    try:
        drafts = await sink.wait_for(55)
    finally:
        await stop(task)
    ids = [d.context["cdc"]["change_id"] for d in drafts]
    assert len(ids) == len(set(ids)) == 55
    assert ids == sorted(ids)


async def test_a_failed_emit_is_retried_not_lost(pg_url: str, db: asyncpg.Connection) -> None:
    sink = Sink()
    sink.failures = 2
    task = await start(PostgresCdcTrigger("orders", pg_url, ["orders"], poll_interval=0.2), sink)
    try:
        await db.execute("INSERT INTO orders VALUES (1, 1, 'a')")
        [draft] = await sink.wait_for(1)
    finally:
        await stop(task)
    assert draft.data["new"]["id"] == 1 and sink.failures == 0


async def test_two_listeners_emit_each_change_once(pg_url: str, db: asyncpg.Connection) -> None:
    sink = Sink()
    tasks = [await start(PostgresCdcTrigger("orders", pg_url, ["orders"], batch_size=10, poll_interval=0.2),
                         sink) for _ in range(2)]
    try:
        for start_id in range(1, 200, 20):
            await db.execute(f"INSERT INTO orders SELECT g, g, 'x' FROM generate_series({start_id}, {start_id + 19}) g")
        drafts = await sink.wait_for(200)
        await asyncio.sleep(0.3)  # a second emit of the same rows would show up now
    finally:
        for task in tasks:
            await stop(task)
    assert len(drafts) == 200 and len({d.context["cdc"]["change_id"] for d in drafts}) == 200


async def test_source_helper_and_uninstall(pg_url: str, db: asyncpg.Connection) -> None:
    source = postgres_cdc_source("shop", pg_url, ["public.orders"])
    trigger = source.triggers["changes"]
    assert isinstance(trigger, PostgresCdcTrigger) and trigger.mode == "cdc"
    assert trigger.consumer == "shop.changes"
    await trigger.install()
    await db.execute("INSERT INTO orders VALUES (1, 1, 'a')")
    assert await db.fetchval("SELECT count(*) FROM core_cdc_changes WHERE consumer = 'shop.changes'") == 1
    await trigger.uninstall()
    await db.execute("INSERT INTO orders VALUES (2, 1, 'a')")
    assert await db.fetchval("SELECT count(*) FROM core_cdc_changes") == 0


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one table"):
        PostgresCdcTrigger("t", "postgresql://x/y", [])
    with pytest.raises(ValueError, match="operations"):
        PostgresCdcTrigger("t", "postgresql://x/y", ["orders"], operations=["TRUNCATE"])
