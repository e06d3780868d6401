"""Claims on the SQLite store: due jobs in order, never twice, constant cost, lease recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event

from core.builtin.sqlite.store import SQLiteStore
from core.testing.data import make_transition, utcnow
from hookspecs import LEASE_EXPIRED, Claim, Job, Status
from tests.sqlstore_kit import db_path, db_url, finish, insert, rows


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(db_url(tmp_path))
    await store.open()
    yield store
    await store.close()


async def claim(store: SQLiteStore, limit: int, now: datetime, owner: str = "a", lease: float = 60) -> list[Job]:
    return await store.claim(Claim(owner, lease), destination="crm", action="identify", limit=limit, now=now)


async def test_claim_moves_due_jobs_to_executing_oldest_first(store: SQLiteStore) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    events = [*(await insert(store, 2, received_at=t0)), *(await insert(store, 2, received_at=t0 + timedelta(1)))]
    await insert(store, 2, action="other")
    now = utcnow()
    got = await claim(store, 3, now)
    assert [j.id for j in got] == [e.jobs[0].id for e in events[:3]]  # in the order they were stored
    assert {(j.status, j.attempt, j.destination, j.action) for j in got} == {(Status.EXECUTING, 1, "crm", "identify")}
    assert got[0].data == events[0].data and got[0].context == events[0].context
    lease = rows(db_path(store),
                 "SELECT DISTINCT lease_owner, lease_expires_at FROM job_state WHERE status = 'executing'")
    assert lease == [("a", (now + timedelta(seconds=60)).replace(tzinfo=None).isoformat(" ", "microseconds"))]
    history = await store.get_job(got[0].id)
    assert history is not None
    assert [(t.state_before, t.state_after, t.attempt) for t in history.transitions] == [
        (None, Status.ACKNOWLEDGED, 0), (Status.ACKNOWLEDGED, Status.EXECUTING, 1)]
    assert len(await claim(store, 10, now)) == 1  # the fourth; executing ones are not claimable


async def test_jobs_due_later_wait_and_retries_count_attempts(store: SQLiteStore) -> None:
    [event] = await insert(store, 1)
    now = utcnow()
    [job] = await claim(store, 1, now)
    retry_at = now + timedelta(minutes=5)
    await store.add_transitions([make_transition(job, Status.FAILED, due_at=retry_at, error="boom")])
    assert await claim(store, 1, now) == []
    assert await claim(store, 1, retry_at - timedelta(microseconds=1)) == []
    [again] = await claim(store, 1, retry_at)  # due exactly now: claimable
    assert (again.id, again.attempt, again.status, again.due_at) == (event.jobs[0].id, 2, Status.EXECUTING, None)
    stored = await store.get_job(again.id)
    assert stored is not None and stored.transitions[-1].state_before is Status.FAILED


async def test_final_jobs_are_never_claimed(store: SQLiteStore) -> None:
    await insert(store, 3)
    now = utcnow()
    jobs = await claim(store, 3, now)
    for job, status in zip(jobs, (Status.SUCCEEDED, Status.DISCARDED, Status.UNKNOWN), strict=True):
        await finish(store, [job], status)
    assert await claim(store, 10, now + timedelta(days=365)) == []


async def test_claim_ids_takes_only_claimable_named_jobs(store: SQLiteStore) -> None:
    events = await insert(store, 4)
    ids = [e.jobs[0].id for e in events]
    now = utcnow()
    [executing] = await store.claim_ids(Claim("rt"), [ids[0]], now=now)
    await finish(store, await store.claim_ids(Claim("rt"), [ids[1]], now=now))
    got = await store.claim_ids(Claim("rt"), [ids[0], ids[1], ids[2], ids[2], "missing", ids[3]], now=now)
    assert executing.id == ids[0]
    assert [j.id for j in got] == [ids[2], ids[3]] and {j.status for j in got} == {Status.EXECUTING}
    assert await store.claim_ids(Claim("rt"), [], now=now) == []


async def test_two_stores_on_one_file_never_share_a_job(tmp_path: Path) -> None:
    stores = [SQLiteStore(db_url(tmp_path)), SQLiteStore(db_url(tmp_path))]
    for s in stores:
        await s.open()
    try:
        events = await insert(stores[0], 300)
        seen: list[str] = []

        async def claimer(store: SQLiteStore, owner: str) -> None:
            while jobs := await claim(store, 7, utcnow(), owner=owner):
                seen.extend(j.id for j in jobs)
                await asyncio.sleep(0)

        await asyncio.gather(*(claimer(s, f"{i}-{n}") for i, s in enumerate(stores) for n in range(3)))
        assert sorted(seen) == sorted(e.jobs[0].id for e in events)  # every job once, none twice
        counts = rows(db_path(stores[0]), "SELECT count(*) FROM transitions WHERE state_after = 'executing'")
        assert counts == [(300,)]
    finally:
        for s in stores:
            await s.close()


async def test_a_claim_costs_the_same_statements_for_1_or_200_jobs(store: SQLiteStore) -> None:
    await insert(store, 201)
    statements: list[str] = []
    engine = store.engine
    assert engine is not None

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa_event.listen(engine.sync_engine, "before_cursor_execute", count)
    now = utcnow()
    await claim(store, 1, now)
    one = len(statements)
    statements.clear()
    assert len(await claim(store, 200, now)) == 200
    assert len(statements) == one


async def test_the_claim_query_reads_the_partial_claim_index(store: SQLiteStore) -> None:
    plan = rows(db_path(store), """EXPLAIN QUERY PLAN
        SELECT jobs.id FROM jobs JOIN job_state ON job_state.job_seq = jobs.seq
        WHERE job_state.destination = 'crm' AND job_state.action = 'identify'
          AND job_state.status IN ('acknowledged', 'awaiting', 'failed') AND job_state.ready_at <= '2030'
        ORDER BY job_state.ready_at, job_state.job_seq LIMIT 10""")
    details = " ".join(str(r[-1]) for r in plan)
    assert "ix_job_state_claim" in details and "TEMP B-TREE" not in details


async def test_recover_fails_expired_leases_without_counting_an_attempt(store: SQLiteStore) -> None:
    await insert(store, 3)
    now = utcnow()
    short = await claim(store, 2, now, owner="crashed", lease=10)
    [long] = await claim(store, 1, now, owner="alive", lease=3600)
    assert await store.recover(now=now + timedelta(seconds=9)) == []
    recovered = await store.recover(now=now + timedelta(seconds=10))
    assert sorted(j.id for j in recovered) == sorted(j.id for j in short)
    assert {(j.status, j.attempt, j.due_at) for j in recovered} == {(Status.FAILED, 1, None)}
    job = await store.get_job(short[0].id)
    assert job is not None and job.status is Status.FAILED
    last = job.transitions[-1]
    assert (last.state_before, last.state_after, last.attempt, last.error) == (
        Status.EXECUTING, Status.FAILED, 1, LEASE_EXPIRED)
    assert await store.recover(now=now + timedelta(seconds=10)) == []  # once only
    again = await claim(store, 5, now + timedelta(seconds=11))
    assert sorted(j.id for j in again) == sorted(j.id for j in short) and {j.attempt for j in again} == {2}
    still = await store.get_job(long.id)
    assert still is not None and still.status is Status.EXECUTING


def test_a_compiled_query_binds_its_named_arguments_and_refuses_a_missing_one() -> None:
    """``compiled`` leaves the named parameters to ``bind`` (in the text's order) and fixes the
    others; an argument the query does not bind is an error, not a wrong result."""
    from sqlalchemy import bindparam, select
    from sqlalchemy.dialects.postgresql import asyncpg

    from core.sqlstore.claims import compiled
    from core.sqlstore.schema import events

    dialect = asyncpg.dialect()  # type: ignore[no-untyped-call]
    query = select(events.c.id).where(events.c.source == bindparam("source", None), events.c.name == "order")
    done = compiled(query.limit(bindparam("limit", None)), dialect, {"source", "limit"})
    assert done.bind({"source": "shop", "limit": 3}) == ("shop", "order", 3)
    with pytest.raises(RuntimeError, match="binds no limit"):
        compiled(query, dialect, {"source", "limit"})
