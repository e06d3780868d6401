"""The PostgreSQL store beyond the conformance kit: concurrency, connection loss, COPY."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from conftest import SERVER, database_url
from core.testing import make_event, make_events
from hookspecs import Claim, Event, Job, Page, Queue, Status, StoreUnavailable, WhereEvent, WhereJob, new_id

from core_plugin_postgres.store import PostgresStore

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def queue(count: int, *, action: str = "send") -> Queue:
    events = []
    for _ in range(count):
        event_id = new_id()
        job = Job(id=new_id(), destination="crm", action=action, event_id=event_id,
                  context={"k": "v"}, data={"n": 1}, created_at=NOW)
        events.append(Event(id=event_id, source="shop", name="order", context={}, data={"x": 1},
                            received_at=NOW, jobs=[job]))
    return Queue(events)


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    adapter = PostgresStore(pg_url, copy_threshold=50)
    await adapter.open()
    yield adapter
    await adapter.close()


async def test_two_stores_claiming_concurrently_never_share_a_job(store: PostgresStore, pg_url: str) -> None:
    await store.insert_queue(queue(1000))
    other = PostgresStore(pg_url)
    await other.open()
    try:
        claimed: list[list[str]] = [[], []]

        async def drain(index: int, adapter: PostgresStore) -> None:
            while True:
                jobs = await adapter.claim(Claim(owner=f"s{index}"), destination="crm", action="send",
                                           limit=37, now=NOW)
                if not jobs:
                    return
                claimed[index] += [job.id for job in jobs]
                await asyncio.sleep(0)

        await asyncio.gather(drain(0, store), drain(1, other), drain(0, store), drain(1, other))
    finally:
        await other.close()
    assert not set(claimed[0]) & set(claimed[1])
    assert len(claimed[0]) + len(claimed[1]) == 1000
    assert len(set(claimed[0] + claimed[1])) == 1000


async def test_large_batches_are_copied_and_read_back(store: PostgresStore) -> None:
    batch = queue(300)
    await store.insert_queue(batch)
    event = await store.get_event(batch.events[-1].id)
    assert event is not None and event.data == {"x": 1} and event.received_at == NOW
    job = await store.get_job(batch.events[0].jobs[0].id)
    assert job is not None and job.context == {"k": "v"} and job.status is Status.ACKNOWLEDGED
    assert len(job.transitions) == 1


async def test_events_by_id_read_on_the_driver_match_the_base_read(store: PostgresStore) -> None:
    """The scheduler's read (ids alone, on asyncpg) gives the events the base's SQLAlchemy read
    gives (the same ids with a source filter), values converted alike, the limit kept."""
    batch = queue(5)
    batch.events[0].sent_at = NOW - timedelta(seconds=1)
    await store.insert_queue(batch)
    ids = [event.id for event in reversed(batch.events)] + [new_id()]
    by_id = await store.find_events(WhereEvent(ids=ids))
    base = await store.find_events(WhereEvent(ids=ids, sources=["shop"]))
    assert [event.id for event in by_id] == sorted(event.id for event in batch.events)
    assert by_id == base
    first = next(event for event in by_id if event.id == batch.events[0].id)
    assert first.sent_at == NOW - timedelta(seconds=1) and first.received_at == NOW
    assert len(await store.find_events(WhereEvent(ids=ids, page=Page(limit=2)))) == 2


async def terminate_other_backends(pg_url: str) -> None:
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()


async def test_connection_loss_mid_transaction_is_unavailable_then_reconnects(
    store: PostgresStore, pg_url: str
) -> None:
    await store.insert_queue(queue(1))
    admin = await asyncpg.connect(pg_url)
    try:
        # Hold a lock on the jobs table so that the next insert waits inside its transaction,
        # then terminate the store's backend while it waits.
        await admin.execute("BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        lost = queue(5)
        insert = asyncio.ensure_future(store.insert_queue(lost))
        deadline = asyncio.get_running_loop().time() + 10
        while not await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ):
            assert asyncio.get_running_loop().time() < deadline, "the insert never waited"
            await asyncio.sleep(0.02)
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        with pytest.raises(StoreUnavailable):
            await insert
        await admin.execute("COMMIT")
    finally:
        await admin.close()
    assert await store.get_event(lost.events[0].id) is None  # nothing of the failed call
    kept = queue(2)
    await store.insert_queue(kept)  # the next call reconnects
    assert await store.get_event(kept.events[1].id) is not None


async def test_all_connections_killed_next_call_reconnects(store: PostgresStore, pg_url: str) -> None:
    await store.insert_queue(queue(1))
    await terminate_other_backends(pg_url)
    for _ in range(3):  # a dead pooled connection may surface once as unavailable
        try:
            await store.insert_queue(queue(1))
            break
        except StoreUnavailable:
            continue
    else:
        raise AssertionError("the store never reconnected")
    assert len(await store.claim(Claim(owner="s"), destination="crm", action="send", limit=10, now=NOW)) >= 2


async def test_unreachable_server_is_unavailable() -> None:
    adapter = PostgresStore("postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(StoreUnavailable):
        await adapter.open()


async def test_job_state_is_tuned_for_in_place_updates(store: PostgresStore, pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        options = await conn.fetchval("SELECT reloptions FROM pg_class WHERE relname = 'job_state'")
    finally:
        await conn.close()
    assert "fillfactor=70" in options


async def test_retention_purges_finished_history(pg_url: str) -> None:
    old = queue(3)
    for event in old.events:
        event.received_at = datetime(2020, 1, 1, tzinfo=UTC)
        for job in event.jobs:
            job.status = Status.SUCCEEDED
    recent = queue(1)
    adapter = PostgresStore(pg_url, retention=3600, purge_interval=0.05)
    await adapter.open()
    try:
        await adapter.insert_queue(old)
        await adapter.insert_queue(recent)
        deadline = asyncio.get_running_loop().time() + 10
        while await adapter.get_event(old.events[0].id) is not None:
            assert asyncio.get_running_loop().time() < deadline, "the old events were never purged"
            await asyncio.sleep(0.05)
        assert await adapter.get_event(recent.events[0].id) is not None  # not final, not old
    finally:
        await adapter.close()


@pytest.mark.parametrize("copy_threshold", [1, 1000])
async def test_a_write_failing_after_its_first_table_stores_nothing(pg_url: str, copy_threshold: int) -> None:
    adapter = PostgresStore(pg_url, copy_threshold=copy_threshold)
    await adapter.open()
    try:
        first = queue(1)
        await adapter.insert_queue(first)
        clash = queue(2)
        clash.events[1].jobs[0].id = first.events[0].jobs[0].id  # the jobs insert fails
        with pytest.raises(asyncpg.UniqueViolationError):
            await adapter.insert_queue(clash)
        assert await adapter.get_event(clash.events[0].id) is None
        assert await adapter.get_event(clash.events[1].id) is None
    finally:
        await adapter.close()


@pytest.mark.parametrize(("locale", "bounds"), [
    ("LC_COLLATE 'C' LC_CTYPE 'C'", True),
    ("LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'", False),  # 'a' before 'Z'
], ids=["C", "en-US"])
async def test_time_filters_bound_the_id_only_where_ids_sort_as_bytes(locale: str, bounds: bool) -> None:
    """A KSUID sorts by time only in byte order: with a linguistic collation the store keeps
    its time filters to the time columns, and they find the same rows (in that collation's
    order of ids)."""
    name = f"core_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(SERVER)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 {locale}')
        adapter = PostgresStore(database_url(name))
        await adapter.open()
        try:
            assert adapter.id_bounds is bounds
            now = datetime.now(UTC)
            old, recent = make_event(received_at=now - timedelta(hours=2)), make_events(20, received_at=now)
            await adapter.insert_queue(Queue(events=[old, *recent]))
            since = now - timedelta(minutes=1)
            found = await adapter.find_events(WhereEvent(received_after=since))
            assert sorted(e.id for e in found) == sorted(e.id for e in recent)
            jobs = await adapter.find_jobs(WhereJob(created_after=since))
            assert sorted(j.id for j in jobs) == sorted(e.jobs[0].id for e in recent)
        finally:
            await adapter.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
