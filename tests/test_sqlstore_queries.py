"""Queries of the SQLite store: every filter, keyset paging, get with details, purge, rebuild."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.builtin.sqlite.store import SQLiteStore
from core.sqlstore.reads import CLOCK_SLACK
from core.testing.data import make_event, make_job, make_transition, utcnow
from hookspecs import Claim, Job, Page, Queue, Status, WhereEvent, WhereJob, new_id
from tests.sqlstore_kit import db_path, db_url, finish, insert, rows

T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(db_url(tmp_path), purge_batch=2)
    await store.open()
    yield store
    await store.close()


def job_ids(jobs: list[Job]) -> list[str]:
    return [j.id for j in jobs]


async def test_find_events_by_every_filter_ordered_by_id(store: SQLiteStore) -> None:
    shop = await insert(store, 3, source="shop", name="order", received_at=T0)
    app = await insert(store, 2, source="app", name="signup", received_at=T0 + timedelta(hours=1))
    late = await insert(store, 1, source="app", name="order", received_at=T0 + timedelta(hours=2))

    async def find(**where: object) -> list[str]:
        return [e.id for e in await store.find_events(WhereEvent(**where))]  # type: ignore[arg-type]

    every = sorted(e.id for e in [*shop, *app, *late])
    assert await find() == every
    assert await find(sources=["shop"]) == sorted(e.id for e in shop)
    assert await find(names=["order"]) == sorted(e.id for e in [*shop, *late])
    assert await find(sources=["app"], names=["order"]) == [late[0].id]
    assert await find(ids=[late[0].id, shop[0].id, "missing"]) == sorted([late[0].id, shop[0].id])
    assert await find(received_after=T0) == sorted(e.id for e in [*app, *late])
    assert await find(received_before=T0 + timedelta(hours=2)) == sorted(e.id for e in [*shop, *app])
    found = await store.find_events(WhereEvent(ids=[app[0].id]))
    assert found[0].jobs == [] and found[0].received_at == T0 + timedelta(hours=1)


async def test_a_time_bound_bounds_the_id_within_the_clock_slack(store: SQLiteStore) -> None:
    """``received_after`` / ``created_after`` also bound the id (KSUIDs carry their second), by
    the id of the bound's second less the slack: a row whose id was made up to the slack
    before its time (a clock stepped back) is still found; ids older than that are taken as
    rows before the bound."""
    assert store.id_bounds, "SQLite compares ids as bytes (BINARY): KSUIDs sort by time"
    made = (T0 - CLOCK_SLACK / 2).timestamp()
    stepped = make_event(received_at=T0, actions=[])
    stepped.id = new_id(made)
    stepped.jobs = [replace(make_job(stepped), id=new_id(made))]
    await store.insert_queue(Queue(events=[stepped]))
    await insert(store, 2, received_at=T0 - timedelta(hours=1))
    since = T0 - timedelta(seconds=1)
    assert [e.id for e in await store.find_events(WhereEvent(received_after=since))] == [stepped.id]
    assert [j.id for j in await store.find_jobs(WhereJob(created_after=since))] == [stepped.jobs[0].id]
    assert len(await store.find_events(WhereEvent(received_after=T0 - timedelta(hours=2)))) == 3


async def test_keyset_paging_visits_everything_once(store: SQLiteStore) -> None:
    events = await insert(store, 7)
    seen_events: list[str] = []
    seen_jobs: list[str] = []
    after: str | None = None
    while page := await store.find_events(WhereEvent(page=Page(limit=3, after=after))):
        seen_events += [e.id for e in page]
        after = page[-1].id
    after = None
    while jobs := await store.find_jobs(WhereJob(page=Page(limit=2, after=after))):
        seen_jobs += job_ids(jobs)
        after = jobs[-1].id
    assert seen_events == sorted(e.id for e in events)
    assert seen_jobs == sorted(e.jobs[0].id for e in events)
    assert await store.find_jobs(WhereJob(page=Page(limit=0))) == []


async def test_find_jobs_by_every_filter(store: SQLiteStore) -> None:
    shop = await insert(store, 2, source="shop", name="order", received_at=T0)
    app = await insert(store, 2, source="app", name="signup", destination="warehouse", action="insert",
                       received_at=T0 + timedelta(hours=1))
    now = utcnow()
    [running] = await store.claim(Claim("a"), destination="crm", action="identify", limit=1, now=now)
    await store.add_transitions([make_transition(running, Status.FAILED, error="x")])
    [done] = await store.claim(Claim("a"), destination="warehouse", action="insert", limit=1, now=now)
    await finish(store, [done])

    async def find(**where: object) -> list[str]:
        return job_ids(await store.find_jobs(WhereJob(**where)))  # type: ignore[arg-type]

    crm = sorted(e.jobs[0].id for e in shop)
    assert await find(destinations_in=["crm"]) == crm
    assert await find(actions_in=["insert"]) == sorted(e.jobs[0].id for e in app)
    assert await find(sources=["shop"]) == crm
    assert await find(events_in=["signup"], status_in=[Status.ACKNOWLEDGED]) == [
        e.jobs[0].id for e in app if e.jobs[0].id != done.id]
    assert await find(status_in=[Status.FAILED]) == [running.id]
    assert await find(status_not_in=[Status.ACKNOWLEDGED]) == sorted([running.id, done.id])
    assert await find(max_attempts=0) == sorted(
        e.jobs[0].id for e in [*shop, *app] if e.jobs[0].id not in (running.id, done.id))
    assert await find(event_ids=[shop[1].id]) == [shop[1].jobs[0].id]
    assert await find(ids=[done.id]) == [done.id]
    assert await find(created_after=T0) == sorted(e.jobs[0].id for e in app)
    assert await find(created_before=T0 + timedelta(hours=1)) == crm
    [failed] = await store.find_jobs(WhereJob(ids=[running.id]))
    assert (failed.status, failed.attempt, failed.transitions) == (Status.FAILED, 1, [])


async def test_get_event_and_get_job_with_details(store: SQLiteStore) -> None:
    [event] = await insert(store, 1)
    child = make_job(event, "crm", "follow", parent_job_id=event.jobs[0].id)
    await store.add_jobs([child])
    got = await store.get_event(event.id)
    assert got is not None and job_ids(got.jobs) == sorted([event.jobs[0].id, child.id])
    stored = await store.get_job(child.id)
    assert stored is not None and (stored.parent_job_id, stored.status) == (event.jobs[0].id, Status.ACKNOWLEDGED)
    assert await store.get_event("missing") is None and await store.get_job("missing") is None


async def test_purge_deletes_old_finished_events_with_everything_of_theirs(store: SQLiteStore) -> None:
    old = await insert(store, 5, received_at=T0)
    recent = await insert(store, 1, received_at=T0 + timedelta(days=10))
    unfinished = old[4]
    now = utcnow()
    claimed = await store.claim(Claim("a"), destination="crm", action="identify", limit=10, now=now)
    await finish(store, [j for j in claimed if j.event_id != unfinished.id])
    await store.add_jobs([make_job(old[0], "crm", "follow", parent_job_id=old[0].jobs[0].id)])
    assert await store.purge(before=T0 + timedelta(days=1)) == 3  # old[0] has an unfinished child now
    left = {e.id for e in await store.find_events(WhereEvent())}
    assert left == {old[0].id, unfinished.id, recent[0].id}
    path = db_path(store)
    for table, key in (("jobs", "event_id"), ("transitions", "event_id")):
        assert rows(path, f"SELECT DISTINCT {key} FROM {table} ORDER BY 1") == [(i,) for i in sorted(left)]
    assert rows(path, "SELECT count(*) FROM job_state") == rows(path, "SELECT count(*) FROM jobs")
    assert await store.purge(before=T0 + timedelta(days=1)) == 0


async def test_rebuild_state_recomputes_the_summary_from_the_history(store: SQLiteStore) -> None:
    events = await insert(store, 6)
    now = utcnow()
    claimed = await store.claim(Claim("a", lease_seconds=30), destination="crm", action="identify", limit=4, now=now)
    await finish(store, claimed[:1])
    await store.add_transitions([make_transition(claimed[1], Status.FAILED, due_at=now + timedelta(hours=1))])
    await store.add_transitions([make_transition(
        next(j for e in events for j in e.jobs if j.id not in job_ids(claimed)), Status.AWAITING)])
    await store.recover(now=now + timedelta(seconds=31))  # claimed[2:] fail, lease expired
    path = db_path(store)
    [still] = await store.claim(Claim("b"), destination="crm", action="identify", limit=1, now=now)
    summary = "SELECT * FROM job_state ORDER BY job_seq"
    before = rows(path, summary)  # every status, a due time, an executing job with its lease
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE job_state SET status = 'succeeded', lease_owner = NULL")  # damage it
    assert await store.rebuild_state() == 6
    assert rows(path, summary) == before
    assert await store.recover(now=now + timedelta(days=1)) != []  # the lease was rebuilt too
    assert still.status is Status.EXECUTING
