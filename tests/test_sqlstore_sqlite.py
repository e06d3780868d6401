"""What is particular to the SQLite store: the file, its pragmas, the schema version,
``:memory:``, and the options."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, event, text
from sqlalchemy.exc import InterfaceError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.builtin.sqlite.connections import begin_immediate, sqlite_engine
from core.builtin.sqlite.store import SQLiteStore
from core.builtin.sqlite.wanderer import SQLiteWanderer
from core.builtin.sqlite.writer_thread import CHECKPOINT_ROWS
from core.errors import ConfigError, CoreError
from core.sqlstore import async_url
from core.sqlstore.schema import SCHEMA_VERSION
from core.sqlstore.versioning import SchemaTooNew, ensure_schema
from core.testing.data import make_event, utcnow
from hookspecs import Claim, Page, Queue, StoreUnavailable, WhereEvent
from tests.sqlstore_kit import db_url, insert, rows


async def test_open_creates_the_directory_and_a_wal_database(tmp_path: Path) -> None:
    store = SQLiteStore(db_url(tmp_path))
    await store.open()
    try:
        path = tmp_path / "state" / "core.db"
        assert path.is_file()
        assert rows(path, "PRAGMA journal_mode") == [("wal",)]
        assert rows(path, "SELECT component, version FROM schema_versions") == [("store", SCHEMA_VERSION)]
    finally:
        await store.close()


async def test_reopening_keeps_the_data_and_the_tables(tmp_path: Path) -> None:
    store = SQLiteStore(db_url(tmp_path))
    await store.open()
    [event] = await insert(store, 1)
    await store.close()
    again = SQLiteStore(db_url(tmp_path))
    await again.open()
    try:
        assert await again.get_event(event.id) is not None
    finally:
        await again.close()


async def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    store = SQLiteStore(db_url(tmp_path))
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "state" / "core.db") as conn:
        conn.execute("UPDATE schema_versions SET version = version + 1 WHERE component = 'store'")
    with pytest.raises(SchemaTooNew, match=r"newer than this release's") as raised:
        await SQLiteStore(db_url(tmp_path)).open()
    assert isinstance(raised.value, CoreError) and "upgrade core" in str(raised.value)


async def test_an_older_schema_is_upgraded_step_by_step(tmp_path: Path) -> None:
    metadata = MetaData()
    table = Table("things", metadata, Column("id", Integer, primary_key=True))
    engine = sqlite_engine(async_url(f"sqlite:///{tmp_path / 'v.db'}"), 1000)
    ran: list[int] = []

    async def step(conn: AsyncConnection, version: int) -> None:
        ran.append(version)
        await conn.execute(text(f"ALTER TABLE things ADD COLUMN c{version} INTEGER"))

    steps = {1: lambda c: step(c, 1), 2: lambda c: step(c, 2)}
    try:
        for version in (1, 3, 3):
            async with engine.connect() as conn:
                await begin_immediate(conn)
                await ensure_schema(conn, "demo", [table], version, steps)
                await conn.commit()
        assert ran == [1, 2]
        assert [r[1] for r in rows(tmp_path / "v.db", "PRAGMA table_info(things)")] == ["id", "c1", "c2"]
        async with engine.connect() as conn:
            await begin_immediate(conn)
            with pytest.raises(CoreError, match="no upgrade of the demo tables from schema version 3"):
                await ensure_schema(conn, "demo", [table], 4, steps)
    finally:
        await engine.dispose()


async def test_memory_database_serves_reads_and_writes_in_turn() -> None:
    store = SQLiteStore("sqlite:///:memory:", commit_delay_ms=0)
    await store.open()
    try:
        assert store.path is None
        events = [make_event() for _ in range(30)]
        writes = [store.insert_queue(Queue(events=[e])) for e in events]
        reads = [store.find_events(WhereEvent()) for _ in range(10)]
        await asyncio.gather(*writes, *reads)
        assert len(await store.find_events(WhereEvent())) == 30
        claimed = await store.claim(Claim("m"), destination="crm", action="identify", limit=100, now=utcnow())
        assert len(claimed) == 30
    finally:
        await store.close()


@pytest.mark.parametrize(("options", "message"), [
    ({"commit_delay": 2}, "known options: commit_delay_ms, max_batch, purge_batch, busy_timeout_ms"),
    ({"max_batch": 0}, "max_batch >= 1"),
    ({"busy_timeout_ms": -1}, "a number >= 0"),
])
def test_bad_options_are_explained(tmp_path: Path, options: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SQLiteStore(db_url(tmp_path), **options)


def test_a_url_with_a_host_is_explained() -> None:
    with pytest.raises(ConfigError, match=r"'sqlite://data.db' is not valid\n  hint: a SQLite URL has three slashes"):
        SQLiteStore("sqlite://data.db")


@pytest.mark.parametrize("adapter", [SQLiteStore, SQLiteWanderer])
def test_a_url_query_is_refused_not_ignored(tmp_path: Path, adapter: type[SQLiteStore | SQLiteWanderer]) -> None:
    """The driver would ignore ``?busy_timeout_ms=1`` with a warning: the user meant an option."""
    with pytest.raises(ConfigError, match=r"\?busy_timeout_ms = '1' is not valid\n  hint: the SQLite URL takes no "
                                          r"query: set options in \[options\.(store|wanderer)\]"):
        adapter(f"{db_url(tmp_path)}?busy_timeout_ms=1")


async def test_an_unwritable_place_is_explained(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    store = SQLiteStore(f"sqlite:///{tmp_path / 'file' / 'sub' / 'core.db'}")
    with pytest.raises(CoreError, match="cannot create the directory .*file/sub of the SQLite database"):
        await store.open()


async def test_the_wanderer_shares_the_option_table_and_the_file(tmp_path: Path) -> None:
    options = {"commit_delay_ms": 1.0, "busy_timeout_ms": 100}
    store, wanderer = SQLiteStore(db_url(tmp_path), **options), SQLiteWanderer(db_url(tmp_path), **options)
    await store.open()
    await wanderer.open()
    try:
        versions = rows(tmp_path / "state" / "core.db", "SELECT component FROM schema_versions ORDER BY 1")
        assert versions == [("store",), ("wanderer",)]
    finally:
        await wanderer.close()
        await store.close()
    with pytest.raises(ConfigError, match="retries"):
        SQLiteWanderer(db_url(tmp_path), retries=3)


def test_a_store_can_be_reopened_in_another_event_loop(tmp_path: Path) -> None:
    store = SQLiteStore(db_url(tmp_path))

    async def write_one() -> None:
        await store.open()
        try:
            await store.insert_queue(Queue(events=[make_event()]))
        finally:
            await store.close()

    asyncio.run(write_one())
    asyncio.run(write_one())  # e.g. two CLI commands in one process
    assert rows(tmp_path / "state" / "core.db", "SELECT count(*) FROM events") == [(2,)]


async def test_a_failing_rollback_on_release_is_store_unavailable(tmp_path: Path) -> None:
    """A connection that dies under a transaction fails again when it is released (rollback,
    close): that error too is "store unavailable", never a raw driver error."""
    store = SQLiteStore(db_url(tmp_path))
    await store.open()
    try:
        engine = store.engine
        assert engine is not None

        def dead(conn: object) -> None:
            raise InterfaceError("ROLLBACK", None, Exception("connection is closed"))

        with pytest.raises(StoreUnavailable, match="connection is closed"):
            async with store.connection() as conn:
                event.listen(engine.sync_engine, "rollback", dead)
                await conn.begin()
        event.remove(engine.sync_engine, "rollback", dead)
        assert await store.get_event("missing") is None  # the store works on
    finally:
        await store.close()



def test_connections_opening_one_new_file_at_once_all_open(tmp_path: Path) -> None:
    """Several processes starting together on a fresh file (gateway, scheduler, wanderer) race
    to turn it into a WAL database (SQLite does not wait on its busy timeout for that): every
    connection opens, and every store creates or finds the tables."""

    def connect(url: str, start: threading.Barrier) -> None:
        async def run() -> None:
            engine = sqlite_engine(async_url(url), 5000)
            start.wait()
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
            await engine.dispose()
        asyncio.run(run())

    def open_store(url: str, start: threading.Barrier) -> None:
        async def run() -> None:
            store = SQLiteStore(url)
            start.wait()
            await store.open()
            await store.close()
        asyncio.run(run())

    for round_ in range(40):
        url = db_url(tmp_path / str(round_))
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
        start = threading.Barrier(4)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for done in [pool.submit(connect if round_ % 2 else open_store, url, start) for _ in range(4)]:
                done.result()
        assert rows(Path(url.removeprefix("sqlite:///")), "PRAGMA journal_mode") == [("wal",)]


async def test_the_wal_is_checkpointed_by_the_store_not_inside_commits(tmp_path: Path) -> None:
    """The writer's commits never checkpoint (a checkpoint would stall them); a checkpointer
    copies the WAL into the database file once enough rows were written."""
    store = SQLiteStore(db_url(tmp_path))
    await store.open()
    try:
        path = tmp_path / "state" / "core.db"
        empty = path.stat().st_size
        events = [make_event() for _ in range(CHECKPOINT_ROWS // 4 + 100)]  # 4 rows per event
        for start in range(0, len(events), 500):
            await store.insert_queue(Queue(events[start:start + 500]))
        deadline = time.monotonic() + 30
        while path.stat().st_size == empty and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert path.stat().st_size > empty
    finally:
        await store.close()


async def test_thread_batches_and_async_tasks_interleave_without_locking_each_other(tmp_path: Path) -> None:
    """Inserts (the writer thread) and recovery / purge (the async path) arriving together
    share the one writer: none of them waits on SQLite's write lock, all succeed."""
    store = SQLiteStore(db_url(tmp_path), busy_timeout_ms=100)
    await store.open()
    try:
        events = [make_event() for _ in range(400)]
        writes = [store.insert_queue(Queue([event])) for event in events]
        others = [store.recover(now=utcnow()) for _ in range(20)]
        others += [store.purge(before=utcnow()) for _ in range(5)]
        results = await asyncio.gather(*writes, *others)
        assert results[len(writes):] == [[]] * 20 + [0] * 5
        assert len(await store.find_events(WhereEvent(page=Page(limit=1000)))) == 400
    finally:
        await store.close()
