"""The query half of the store suite: every :class:`WhereJob` and :class:`WhereEvent` field
filters, results are ordered by id, and keyset paging walks them all once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest_asyncio

from core.testing.data import Names, advance, ids, later, make_event, make_transition, utcnow
from hookspecs import Event, Job, Page, Queue, Status, Store, WhereEvent, WhereJob


@dataclass(slots=True)
class Scene:
    """Three events of two sources, four jobs in four states, over one hour.

    ``signup`` (source a, an hour ago): jobs d1.a1 succeeded (attempt 1), d1.a2 failed twice
    (attempt 2); ``order`` (source b, half an hour ago): d2.a1 acknowledged; ``order``
    (source a, now): d1.a1 executing (attempt 1).
    """

    t0: datetime
    source_a: str
    source_b: str
    d1: str
    d2: str
    events: list[Event]

    @property
    def jobs(self) -> list[Job]:
        return [job for event in self.events for job in event.jobs]


async def _build(store: Store, names: Names) -> Scene:
    t0 = utcnow()
    a, b, d1, d2 = names.source, names.source + "_b", names.destination, names.destination + "_2"
    events = [
        make_event(source=a, name="signup", received_at=later(t0, -3600), actions=[(d1, "a1"), (d1, "a2")]),
        make_event(source=b, name="order", received_at=later(t0, -1800), actions=[(d2, "a1")]),
        make_event(source=a, name="order", received_at=t0, actions=[(d1, "a1")]),
    ]
    await store.insert_queue(Queue(events=events))
    plan = {
        events[0].jobs[0].id: [Status.EXECUTING, Status.SUCCEEDED],
        events[0].jobs[1].id: [Status.EXECUTING, Status.FAILED, Status.EXECUTING, Status.FAILED],
        events[2].jobs[0].id: [Status.EXECUTING],
    }
    for job in [job for event in events for job in event.jobs]:
        for state in plan.get(job.id, []):
            transition = make_transition(job, state, error="boom" if state is Status.FAILED else None)
            await store.add_transitions([transition])
            advance(job, transition)
    return Scene(t0, a, b, d1, d2, events)


class StoreQueryChecks:
    """Mixed into :class:`~core.testing.StoreSuite`; needs its ``adapter`` and ``names``."""

    @pytest_asyncio.fixture
    async def scene(self, adapter: Store, names: Names) -> AsyncIterator[Scene]:
        yield await _build(adapter, names)

    async def _jobs(self, store: Store, scene: Scene, **where: Any) -> list[str]:
        where.setdefault("event_ids", ids(scene.events))
        found = await store.find_jobs(WhereJob(**where))
        assert ids(found) == sorted(ids(found)), "find_jobs results are not ordered by id"
        return ids(found)

    async def _events(self, store: Store, scene: Scene, **where: Any) -> list[str]:
        where.setdefault("sources", [scene.source_a, scene.source_b])
        found = await store.find_events(WhereEvent(**where))
        assert ids(found) == sorted(ids(found)), "find_events results are not ordered by id"
        assert all(not event.jobs for event in found), "find_events returns events without their jobs"
        return ids(found)

    async def test_find_jobs_filters_on_every_field(self, adapter: Store, scene: Scene) -> None:
        e1, e2, e3 = scene.events
        (s1, f1), (a2,), (x3,) = (j.id for j in e1.jobs), (e2.jobs[0].id,), (e3.jobs[0].id,)
        checks: list[tuple[dict[str, Any], list[str]]] = [
            ({}, [s1, f1, a2, x3]),
            ({"ids": [s1, x3]}, [s1, x3]),
            ({"event_ids": [e2.id]}, [a2]),
            ({"sources": [scene.source_b]}, [a2]),
            ({"events_in": ["signup"]}, [s1, f1]),
            ({"destinations_in": [scene.d2]}, [a2]),
            ({"actions_in": ["a2"]}, [f1]),
            ({"status_in": [Status.SUCCEEDED, Status.ACKNOWLEDGED]}, [s1, a2]),
            ({"status_not_in": [Status.FAILED, Status.EXECUTING]}, [s1, a2]),
            ({"max_attempts": 1}, [s1, a2, x3]),
            ({"max_attempts": 0}, [a2]),
            ({"created_after": later(scene.t0, -2700)}, [a2, x3]),
            ({"created_before": later(scene.t0, -900)}, [s1, f1, a2]),
            ({"sources": [scene.source_a], "status_in": [Status.FAILED]}, [f1]),
            ({"events_in": ["order"], "destinations_in": [scene.d1]}, [x3]),
        ]
        for where, expected in checks:
            assert await self._jobs(adapter, scene, **where) == sorted(expected), f"find_jobs(WhereJob({where}))"

    async def test_find_jobs_reports_the_current_status(self, adapter: Store, scene: Scene) -> None:
        found = {job.id: job for job in await adapter.find_jobs(WhereJob(event_ids=ids(scene.events)))}
        for job in scene.jobs:
            assert (found[job.id].status, found[job.id].attempt) == (job.status, job.attempt)
            assert (found[job.id].destination, found[job.id].action) == (job.destination, job.action)

    async def test_find_events_filters_on_every_field(self, adapter: Store, scene: Scene) -> None:
        e1, e2, e3 = scene.events
        checks: list[tuple[dict[str, Any], list[str]]] = [
            ({}, [e1.id, e2.id, e3.id]),
            ({"ids": [e1.id, e3.id]}, [e1.id, e3.id]),
            ({"sources": [scene.source_b]}, [e2.id]),
            ({"names": ["order"]}, [e2.id, e3.id]),
            ({"received_after": later(scene.t0, -2700)}, [e2.id, e3.id]),
            ({"received_before": later(scene.t0, -900)}, [e1.id, e2.id]),
            ({"names": ["order"], "sources": [scene.source_a]}, [e3.id]),
        ]
        for where, expected in checks:
            assert await self._events(adapter, scene, **where) == sorted(expected), f"find_events(WhereEvent({where}))"

    async def test_find_jobs_pages_through_every_job_once(self, adapter: Store, scene: Scene) -> None:
        seen: list[str] = []
        after: str | None = None
        while page := await self._jobs(adapter, scene, page=Page(limit=3, after=after)):
            assert len(page) <= 3
            seen += page
            after = page[-1]
        assert seen == sorted(ids(scene.jobs))

    async def test_find_events_pages_through_every_event_once(self, adapter: Store, scene: Scene) -> None:
        first = await self._events(adapter, scene, page=Page(limit=2))
        rest = await self._events(adapter, scene, page=Page(limit=2, after=first[-1]))
        assert len(first) == 2
        assert first + rest == sorted(ids(scene.events))
        assert await self._events(adapter, scene, page=Page(limit=2, after=rest[-1])) == []

    async def test_get_event_returns_its_jobs_with_their_status(self, adapter: Store, scene: Scene) -> None:
        signup = scene.events[0]
        got = await adapter.get_event(signup.id)
        assert got is not None
        assert {job.id: job.status for job in got.jobs} == {job.id: job.status for job in signup.jobs}

    async def test_get_job_returns_the_full_history(self, adapter: Store, scene: Scene) -> None:
        failed_twice = scene.events[0].jobs[1]
        got = await adapter.get_job(failed_twice.id)
        assert got is not None
        assert [t.state_after for t in got.transitions] == [
            Status.ACKNOWLEDGED, Status.EXECUTING, Status.FAILED, Status.EXECUTING, Status.FAILED]
        assert [t.error for t in got.transitions if t.state_after is Status.FAILED] == ["boom", "boom"]
