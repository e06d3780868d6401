"""``TableAction`` and ``TemplateAction`` load queues into PostgreSQL, MariaDB and SQLite."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hookspecs import CoreError, Direction, Event, Job, MigrationScript, Queue, Status, Then, Toolkit, new_id

from core_plugin_sql import Column, SQLDestination, TableAction, TemplateAction, destinations_from_toml

TOOLKIT = Toolkit(logger=logging.getLogger("test"))
ORDERS = "CREATE TABLE orders (id VARCHAR(40) PRIMARY KEY, total NUMERIC(10, 2), customer VARCHAR(80), at TIMESTAMP)"


def queue(*data: Any) -> Queue:
    now = datetime.now(UTC)
    events = []
    for d in data:
        event = Event(id=new_id(), source="shop", name="order", context={}, data=d, received_at=now)
        event.jobs = [Job(id=new_id(), event_id=event.id, destination="wh", action="a", data=d, context={},
                          created_at=now, status=Status.EXECUTING)]
        events.append(event)
    return Queue(events=events)


@pytest.fixture
async def warehouse(db_url: str) -> AsyncIterator[SQLDestination]:
    columns = [Column("id"), Column("total", "numeric"), Column("customer"), Column("at", "timestamp")]
    destination = SQLDestination("wh", [
        TableAction("insert", "orders", columns, copy_threshold=3),
        TableAction("upsert", "orders", columns, key=["id"]),
        TemplateAction("note", "INSERT INTO notes (body) VALUES ({{ data.body }})"),
    ], url=db_url)
    await destination.init(TOOLKIT)
    await destination.run_operation(destination.render(ORDERS + "; CREATE TABLE notes (body VARCHAR(200))"))
    yield destination
    await destination.shutdown(TOOLKIT)


async def rows(destination: SQLDestination) -> list[dict[str, Any]]:
    return (await destination.run_query(destination.render(
        "SELECT id, total, customer FROM orders ORDER BY id"))).records()


def succeeded(result: Any) -> set[str]:
    return {j for t in result if t.error is None for j in t.jobs}


async def test_a_batch_is_inserted(warehouse: SQLDestination) -> None:
    # 4 rows: COPY on PostgreSQL (threshold 3), one executemany INSERT elsewhere
    q = queue(*({"id": f"o{i}", "total": 10.5 + i, "customer": "ann", "at": "2026-01-01T00:00:00"}
                for i in range(4)))
    result = await warehouse.actions["insert"].load(TOOLKIT, q)
    assert isinstance(result, list) and succeeded(result) == {j.id for j in q.jobs}
    assert [(r["id"], Decimal(str(r["total"]))) for r in await rows(warehouse)] == [
        (f"o{i}", Decimal(str(10.5 + i))) for i in range(4)]


async def test_upsert_by_key_updates_existing_rows(warehouse: SQLDestination) -> None:
    await warehouse.actions["upsert"].load(TOOLKIT, queue({"id": "o1", "total": 1, "customer": "ann"}))
    await warehouse.actions["upsert"].load(TOOLKIT, queue({"id": "o1", "total": 2, "customer": "bob"},
                                                          {"id": "o2", "total": 3, "customer": "cy"}))
    assert [(r["id"], r["customer"]) for r in await rows(warehouse)] == [("o1", "bob"), ("o2", "cy")]


async def test_a_job_that_cannot_be_a_row_is_discarded_the_others_load(warehouse: SQLDestination) -> None:
    q = queue({"id": "o1", "total": 1}, {"total": 2}, ["not", "an", "object"])
    result = await warehouse.actions["upsert"].load(TOOLKIT, q)
    assert isinstance(result, list)
    discarded = [t for t in result if t.force_discard]
    assert [len(t.jobs) for t in discarded] == [1, 1] and "no key column id" in str(discarded[0].error)
    assert succeeded(result) == {q.jobs[0].id}
    assert [r["id"] for r in await rows(warehouse)] == ["o1"]


async def test_a_failed_batch_fails_every_job_of_it(warehouse: SQLDestination) -> None:
    q = queue({"id": "o1", "total": 1}, {"id": "o1", "total": 2})  # the same key twice: plain insert fails
    result = await warehouse.actions["insert"].load(TOOLKIT, q)
    assert isinstance(result, list)
    [failed] = [t for t in result if t.error is not None]
    assert set(failed.jobs) == {j.id for j in q.jobs} and not failed.force_discard
    assert await rows(warehouse) == []  # one transaction: nothing of the batch stays


async def test_a_template_action_binds_the_job_data(warehouse: SQLDestination) -> None:
    result = await warehouse.actions["note"].load(TOOLKIT, queue({"body": "'); DROP TABLE orders; --"}))
    assert isinstance(result, Then) and result.error is None
    notes = await warehouse.run_query(warehouse.render("SELECT body FROM notes"))
    assert notes.records() == [{"body": "'); DROP TABLE orders; --"}]
    assert await rows(warehouse) == []  # orders is still there


def test_destinations_declared_in_toml() -> None:
    [wh] = destinations_from_toml({"wh": {
        "url": "postgresql://app:secret@db/wh",
        "schedule": {"interval": "@every 5m", "max_retries": 3},
        "tables": [{"table": "sales.orders", "columns": {"id": "text", "total": "numeric"}, "key": ["id"]}],
        "templates": [{"action": "count", "sql": "UPDATE c SET n = n + 1"}],
    }})
    assert sorted(wh.actions) == ["count", "insert_orders"]
    action = wh.actions["insert_orders"]
    assert isinstance(action, TableAction) and action.key == ("id",) and action.table.schema == "sales"
    assert wh.schedule is not None and wh.schedule.interval == "@every 5m"
    assert "secret" not in repr(wh)


async def test_a_failed_migration_says_what_the_database_kept(db_url: str) -> None:
    destination = SQLDestination("wh", [], url=db_url)
    await destination.init(TOOLKIT)
    try:
        script = MigrationScript(version="20260101000000", scope="destination:wh", name="two", direction=Direction.UP,
                                 path="migrations/d:wh/20260101000000.two.up.sql",
                                 text="CREATE TABLE first_one (x INT); CREATE TABLE broken (;")
        with pytest.raises(CoreError, match=r"^migrations/d:wh/20260101000000.two.up.sql: ") as caught:
            await destination.migrate(TOOLKIT, script)
        tables = await destination.run_query(destination.render(
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'first_one'"
            if destination.dialect.name != "sqlite" else
            "SELECT count(*) AS n FROM sqlite_master WHERE name = 'first_one'"))
        kept = tables.records()[0]["n"]
        if destination.dialect.name in ("mysql", "mariadb"):
            assert kept == 1 and "commits DDL as it goes" in str(caught.value)
        else:
            assert kept == 0 and "commits DDL" not in str(caught.value)  # one transaction: rolled back whole
    finally:
        await destination.shutdown(TOOLKIT)
