"""SQL store writes on SQLite: one transaction per call, group commit, append-only history."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from core.builtin.sqlite.store import SQLiteStore
from core.testing.data import make_event, make_job, make_transition, utcnow
from hookspecs import Claim, Queue, Status, StoreUnavailable, WhereEvent
from tests.sqlstore_kit import db_path, db_url, finish, insert, rows


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(db_url(tmp_path), commit_delay_ms=5)
    await store.open()
    yield store
    await store.close()


def forbid_changes(path: Path, *, deletes: bool = True) -> None:
    """Triggers that abort any UPDATE (and DELETE) of the history tables."""
    with sqlite3.connect(path) as conn:
        for table in ("events", "jobs", "transitions"):
            conn.execute(f"CREATE TRIGGER no_update_{table} BEFORE UPDATE ON {table} "
                         f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
            if deletes:
                conn.execute(f"CREATE TRIGGER no_delete_{table} BEFORE DELETE ON {table} "
                             f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


async def test_insert_queue_writes_events_jobs_and_first_transitions(store: SQLiteStore) -> None:
    event = make_event(actions=[("crm", "identify"), ("warehouse", "insert")])
    event.jobs[1].status = Status.AWAITING
    await store.insert_queue(Queue(events=[event]))
    path = db_path(store)
    assert rows(path, "SELECT id, source, name FROM events") == [(event.id, "shop", "order")]
    firsts = rows(path, "SELECT job_id, attempt, state_before, state_after FROM transitions ORDER BY seq")
    assert firsts == [(event.jobs[0].id, 0, None, "acknowledged"), (event.jobs[1].id, 0, None, "awaiting")]
    got = await store.get_event(event.id)
    assert got is not None
    assert {j.id: j.status for j in got.jobs} == {event.jobs[0].id: Status.ACKNOWLEDGED,
                                                  event.jobs[1].id: Status.AWAITING}


async def test_the_history_is_never_updated_or_deleted(store: SQLiteStore) -> None:
    forbid_changes(db_path(store))
    events = await insert(store, 3)
    parent = events[0].jobs[0]
    await store.add_jobs([make_job(events[0], "crm", "follow", parent_job_id=parent.id)])
    now = utcnow()
    claimed = await store.claim(Claim("a", lease_seconds=0), destination="crm", action="identify", limit=2, now=now)
    await finish(store, claimed[:1])
    await store.recover(now=now)
    await store.claim_ids(Claim("b"), [events[2].jobs[0].id], now=now)
    await store.rebuild_state()
    history = rows(db_path(store), "SELECT state_after FROM transitions ORDER BY seq")
    assert [s for (s,) in history] == ["acknowledged"] * 4 + ["executing"] * 2 + ["succeeded", "failed", "executing"]


async def test_purge_is_the_only_delete(store: SQLiteStore) -> None:
    forbid_changes(db_path(store), deletes=False)
    events = await insert(store, 2, received_at=datetime(2026, 1, 1, tzinfo=UTC))
    await finish(store, [events[0].jobs[0]])
    assert await store.purge(before=datetime(2026, 1, 2, tzinfo=UTC)) == 1


async def test_concurrent_calls_share_commits(store: SQLiteStore) -> None:
    before = store.stats.transactions
    batches = [[make_event()] for _ in range(20)]
    await asyncio.gather(*(store.insert_queue(Queue(events=b)) for b in batches))
    assert store.stats.transactions - before < 20  # fewer transactions than callers
    assert store.stats.calls >= 20
    assert rows(db_path(store), "SELECT count(*) FROM events") == [(20,)]


async def test_max_batch_bounds_a_shared_commit(tmp_path: Path) -> None:
    store = SQLiteStore(db_url(tmp_path), commit_delay_ms=5, max_batch=4)  # rows: event, job, transition
    await store.open()
    try:
        await asyncio.gather(*(store.insert_queue(Queue(events=[make_event()])) for _ in range(6)))
        assert (store.stats.transactions, store.stats.calls) == (3, 6)  # two calls (6 rows) per commit
    finally:
        await store.close()


async def test_a_bad_caller_fails_alone_and_the_others_commit(store: SQLiteStore) -> None:
    [stored] = await insert(store, 1)
    good = [make_event() for _ in range(5)]
    duplicate = make_event()
    duplicate.id = duplicate.jobs[0].event_id = stored.id
    results = await asyncio.gather(
        *(store.insert_queue(Queue(events=[e])) for e in good[:3]),
        store.insert_queue(Queue(events=[duplicate])),
        *(store.insert_queue(Queue(events=[e])) for e in good[3:]),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [list] * 3 + [IntegrityError] + [list] * 2
    assert store.stats.retried_batches >= 1
    found = {e.id for e in await store.find_events(WhereEvent())}
    assert found == {stored.id, *(e.id for e in good)}
    assert rows(db_path(store), "SELECT count(*) FROM jobs WHERE id = ?", [duplicate.jobs[0].id]) == [(0,)]


async def test_a_call_stores_all_or_nothing(store: SQLiteStore) -> None:
    event = make_event(actions=[("crm", "identify"), ("crm", "identify")])
    event.jobs[1].id = event.jobs[0].id  # the second job collides with the first
    with pytest.raises(IntegrityError):
        await store.insert_queue(Queue(events=[event]))
    assert rows(db_path(store), "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM jobs)") == [(0,)]


async def test_naive_times_are_refused(store: SQLiteStore) -> None:
    event = make_event(received_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="naive datetime"):
        await store.insert_queue(Queue(events=[event]))
    assert await store.get_event(event.id) is None


async def test_a_job_must_belong_to_its_event(store: SQLiteStore) -> None:
    one, two = make_event(), make_event()
    one.jobs = two.jobs
    with pytest.raises(ValueError, match="names event"):
        await store.insert_queue(Queue(events=[one]))


async def test_follow_up_jobs_need_a_stored_event(store: SQLiteStore) -> None:
    with pytest.raises(IntegrityError):
        await store.add_jobs([make_job(make_event())])


async def test_transitions_of_unknown_jobs_are_refused_the_others_stored(store: SQLiteStore) -> None:
    [event] = await insert(store, 1)
    unknown = make_transition(make_job(event), Status.EXECUTING)
    refused = await store.add_transitions([make_transition(event.jobs[0], Status.EXECUTING), unknown])
    assert [(r.transition.id, r.current) for r in refused] == [(unknown.id, None)]
    job = await store.get_job(event.jobs[0].id)
    assert job is not None and job.status is Status.EXECUTING and len(job.transitions) == 2
    assert rows(db_path(store), "SELECT count(*) FROM transitions WHERE job_id = ?", [unknown.job_id]) == [(0,)]


async def test_refusals_go_to_their_own_caller_within_one_shared_commit(store: SQLiteStore) -> None:
    events = await insert(store, 4)
    [done, *others] = [event.jobs[0] for event in events]
    await finish(store, [done])
    stale = make_transition(done, Status.EXECUTING)
    calls = [[stale], *[[make_transition(job, Status.EXECUTING)] for job in others]]
    commits = store.stats.transactions
    answers = await asyncio.gather(*(store.add_transitions(call) for call in calls))
    assert store.stats.transactions - commits < len(calls), "the calls did not share a commit"
    assert [[r.transition.id for r in answer] for answer in answers] == [[stale.id], [], [], []]
    assert {(await store.get_job(job.id)).status for job in others} == {Status.EXECUTING}  # type: ignore[union-attr]


async def test_add_transitions_sets_the_state_and_clears_the_lease(store: SQLiteStore) -> None:
    await insert(store, 1)
    now = utcnow()
    [job] = await store.claim(Claim("a"), destination="crm", action="identify", limit=1, now=now)
    due = datetime(2030, 1, 1, tzinfo=UTC)
    await store.add_transitions([make_transition(job, Status.FAILED, error="boom", due_at=due)])
    got = await store.get_job(job.id)
    assert got is not None and (got.status, got.attempt, got.due_at) == (Status.FAILED, 1, due)
    assert got.transitions[-1].error == "boom"
    assert rows(db_path(store), "SELECT lease_owner, lease_expires_at FROM job_state") == [(None, None)]
    assert await store.claim(Claim("a"), destination="crm", action="identify", limit=1, now=now) == []


async def test_a_locked_database_raises_store_unavailable(tmp_path: Path) -> None:
    store = SQLiteStore(db_url(tmp_path), busy_timeout_ms=50)
    await store.open()
    write_lock = sqlite3.connect(db_path(store), isolation_level=None)  # another process's writer
    try:
        write_lock.execute("BEGIN IMMEDIATE")
        event = make_event()
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.insert_queue(Queue(events=[event]))
        write_lock.execute("ROLLBACK")
        assert await store.get_event(event.id) is None
        await store.insert_queue(Queue(events=[event]))  # and it works again
        assert await store.get_event(event.id) is not None
    finally:
        write_lock.close()
        await store.close()


async def test_a_bug_is_not_reported_as_unavailable(store: SQLiteStore) -> None:
    with sqlite3.connect(db_path(store)) as conn:
        conn.execute("DROP TABLE job_state")  # the store's tables are broken, not unreachable
    with pytest.raises(OperationalError, match="no such table"):
        await store.insert_queue(Queue(events=[make_event()]))


async def test_a_closed_store_raises_store_unavailable(tmp_path: Path) -> None:
    store = SQLiteStore(db_url(tmp_path))
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.insert_queue(Queue(events=[make_event()]))
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.get_event("x")


async def test_close_commits_what_is_queued(tmp_path: Path) -> None:
    store = SQLiteStore(db_url(tmp_path), commit_delay_ms=50)
    await store.open()
    pending = asyncio.ensure_future(store.insert_queue(Queue(events=[make_event()])))
    await asyncio.sleep(0)
    await store.close()
    await pending
    assert rows(tmp_path / "state" / "core.db", "SELECT count(*) FROM events") == [(1,)]
