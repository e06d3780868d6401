"""A model-based test of a store: a hypothesis state machine against a model of the contract.

:class:`StoreModelSuite` drives the public :class:`~hookspecs.Store` methods (insert events with
jobs, follow-up jobs, claims by action and by id, transitions legal and illegal, recovery by
lease on a clock of its own and of the claims of a node not alive, purge, finds) in random
orders, keeps a plain-Python model of what each call must do, and checks after every step that

- the history is append-only (every transition seen before is still there, unchanged),
- every stored transition is legal: it starts from the status the previous one left and its
  move is in :data:`~hookspecs.ALLOWED_TRANSITIONS`,
- a job's status and attempt are those of its latest transition, and those of the model,
- illegal moves are refused (returned by ``add_transitions``, not stored) and legal ones kept,
  stale ones too (a move out of ``executing`` naming another attempt than the job's).

Each example uses names of its own, so the store may be shared between examples and tests (a
server database): the machine looks only at its own jobs. :func:`run_store_model` runs it on
any store factory, for example on a deliberately broken store, which it must catch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from core.testing._base import AdapterSuite
from core.testing.data import Names, make_event, make_job, utcnow
from hookspecs import (
    ALLOWED_TRANSITIONS,
    CLAIMABLE_STATUSES,
    FINAL_STATUSES,
    Claim,
    Job,
    Page,
    Queue,
    Status,
    Store,
    Transition,
    WhereJob,
    new_id,
)

T = TypeVar("T")
#: A callable returning a new, unopened store (``make_adapter`` of the suites).
StoreFactory = Callable[[], Any]
#: Every ``state_before`` a transition may name, ``None`` (a first transition) included.
BEFORE: list[Status | None] = [None, *Status]
#: Drawn instead of a ``state_before``: the job's current status in the model (a legal start).
CURRENT = "current"
LEASE = timedelta(seconds=10)
ACTIONS = ("a1", "a2")
#: Most jobs one example stores: every step reads each of them back.
MAX_JOBS = 14


@dataclass(slots=True)
class _Expected:
    """What the model says of one job."""

    event_id: str
    action: str
    status: Status = Status.ACKNOWLEDGED
    attempt: int = 0
    due_at: datetime | None = None
    lease_until: datetime | None = None
    history: list[tuple[Any, ...]] = field(default_factory=list)  # transitions seen, as tuples

    def due(self, now: datetime) -> bool:
        return self.status in CLAIMABLE_STATUSES and (self.due_at is None or self.due_at <= now)


def _seen(t: Transition) -> tuple[Any, ...]:
    return (t.id, t.state_before, t.state_after, t.attempt, t.error)


class StoreMachine(RuleBasedStateMachine):
    """The state machine, on a store made by ``make_store`` (see :func:`run_store_model`)."""

    def __init__(self, make_store: StoreFactory) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store: Store = make_store()
        self.run(self.store.open())
        self.names = Names.unique()
        self.now = utcnow()
        self.jobs: dict[str, _Expected] = {}
        self.events: dict[str, tuple[datetime, list[str]]] = {}

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(call)

    def teardown(self) -> None:
        try:
            self.run(self.store.close())
        finally:
            self.loop.close()

    def pick(self, index: int) -> str:
        ids = sorted(self.jobs)
        return ids[index % len(ids)]

    # -- rules -----------------------------------------------------------------------------

    @precondition(lambda self: len(self.jobs) < MAX_JOBS)
    @rule(actions=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=3), old=st.booleans())
    def insert(self, actions: list[str], old: bool) -> None:
        received = self.now - timedelta(days=2) if old else self.now
        event = make_event(source=self.names.source, received_at=received,
                           actions=[(self.names.destination, a) for a in actions])
        self.run(self.store.insert_queue(Queue(events=[event])))
        self.events[event.id] = (received, [job.id for job in event.jobs])
        for job in event.jobs:
            self.jobs[job.id] = _Expected(event.id, job.action)

    @precondition(lambda self: 0 < len(self.jobs) < MAX_JOBS)
    @rule(index=st.integers(0, MAX_JOBS), action=st.sampled_from(ACTIONS))
    def add_follow_up(self, index: int, action: str) -> None:
        parent = self.jobs[self.pick(index)]
        stored = self.run(self.store.get_event(parent.event_id))
        assert stored is not None, "the event of a stored job is missing"
        child = make_job(stored, self.names.destination, action, parent_job_id=self.pick(index))
        self.run(self.store.add_jobs([child]))
        self.events[parent.event_id][1].append(child.id)
        self.jobs[child.id] = _Expected(parent.event_id, action)

    @rule(action=st.sampled_from(ACTIONS), limit=st.integers(1, 5))
    def claim(self, action: str, limit: int) -> None:
        due = {i for i, job in self.jobs.items() if job.action == action and job.due(self.now)}
        claimed = self.run(self.store.claim(Claim("model", LEASE.total_seconds()), destination=self.names.destination,
                                            action=action, limit=limit, now=self.now))
        got = [job.id for job in claimed]
        assert len(got) == len(set(got)) and set(got) <= due, f"claimed jobs that were not due: {set(got) - due}"
        assert len(got) == min(limit, len(due)), f"claimed {len(got)} of {len(due)} due jobs (limit {limit})"
        self._claimed(claimed)

    @precondition(lambda self: self.jobs)
    @rule(indexes=st.lists(st.integers(0, MAX_JOBS), min_size=1, max_size=4))
    def claim_ids(self, indexes: list[int]) -> None:
        wanted = [self.pick(i) for i in indexes]
        due = {i for i in wanted if self.jobs[i].due(self.now)}
        claimed = self.run(self.store.claim_ids(Claim("model", LEASE.total_seconds()), wanted, now=self.now))
        assert sorted(job.id for job in claimed) == sorted(due), "claim_ids did not claim exactly the due jobs"
        self._claimed(claimed)

    def _claimed(self, claimed: list[Job]) -> None:
        for job in claimed:
            expected = self.jobs[job.id]
            expected.status, expected.attempt, expected.due_at = Status.EXECUTING, expected.attempt + 1, None
            expected.lease_until = self.now + LEASE
            assert (job.status, job.attempt) == (Status.EXECUTING, expected.attempt)

    @precondition(lambda self: self.jobs)
    @rule(moves=st.lists(st.tuples(st.integers(0, MAX_JOBS), st.integers(0, 6), st.booleans(),
                                   st.sampled_from([CURRENT, CURRENT, CURRENT, *BEFORE]), st.integers(-5, 60),
                                   st.sampled_from([0, 0, 0, 0, -1, 1])),
                         min_size=1, max_size=4))
    def add_transitions(self, moves: list[tuple[int, int, bool, Status | str | None, int, int]]) -> None:
        """Transitions from the model's current status (``CURRENT`` drawn) or from a drawn one,
        to an allowed status (``lawful``, when there is one) or to any, naming the attempt the
        move implies or (``skew``) another one."""
        status = {i: job.status for i, job in self.jobs.items()}
        attempt = {i: job.attempt for i, job in self.jobs.items()}
        transitions, legal = [], []
        current_then: dict[str, Status] = {}
        for index, pick, lawful, before, delay, skew in moves:
            job_id = self.pick(index)
            start = status[job_id] if before == CURRENT else before
            allowed = sorted(ALLOWED_TRANSITIONS[status[job_id]])
            after = allowed[pick % len(allowed)] if lawful and allowed else list(Status)[pick]
            tried = attempt[job_id] + (after is Status.EXECUTING) + skew
            due = self.now + timedelta(seconds=delay) if after in (Status.FAILED, Status.AWAITING) else None
            transition = Transition(id=new_id(), job_id=job_id, event_id=self.jobs[job_id].event_id, attempt=tried,
                                    state_before=None if start is None else Status(start), state_after=after,
                                    created_at=self.now, error=None if after is Status.SUCCEEDED else "model",
                                    due_at=due)
            transitions.append(transition)
            fenced = start is Status.EXECUTING and not (
                tried == attempt[job_id] or (after is Status.AWAITING and tried == attempt[job_id] - 1))
            if start == status[job_id] and after in ALLOWED_TRANSITIONS[status[job_id]] and not fenced:
                legal.append(transition)
                status[job_id], attempt[job_id] = after, tried
            else:
                current_then[transition.id] = status[job_id]
        refused = self.run(self.store.add_transitions(transitions))
        refused_ids = [r.transition.id for r in refused]
        legal_ids = {t.id for t in legal}
        expected = [t.id for t in transitions if t.id not in legal_ids]
        assert refused_ids == expected, (
            f"refused {refused_ids}, expected {expected}: an illegal move was stored or a legal one refused")
        for r in refused:
            assert r.transition.job_id in r.reason and r.transition.state_after.value in r.reason
            then = current_then[r.transition.id]
            assert r.current == then, f"{r.reason}: but the job was {then}"
        for t in legal:
            job = self.jobs[t.job_id]
            job.status, job.attempt, job.due_at, job.lease_until = t.state_after, t.attempt, t.due_at, None

    @precondition(lambda self: self.events)
    @rule(index=st.integers(0, MAX_JOBS), final=st.sampled_from(sorted(FINAL_STATUSES)))
    def finish_event(self, index: int, final: Status) -> None:
        """Move every job of one event to ``final`` along legal moves, in one call (chains of
        one job's transitions included); nothing may be refused."""
        event_id = self.jobs[self.pick(index)].event_id
        chain: list[Transition] = []
        for job_id in self.events[event_id][1]:
            job = self.jobs[job_id]
            path = [] if job.status in FINAL_STATUSES else [Status.EXECUTING, final]
            if job.status is Status.EXECUTING:
                path = [final]
            for step in path:
                job.attempt += step is Status.EXECUTING
                chain.append(Transition(id=new_id(), job_id=job_id, event_id=event_id, attempt=job.attempt,
                                        state_before=job.status, state_after=step, created_at=self.now))
                job.status, job.due_at, job.lease_until = step, None, None
        refused = self.run(self.store.add_transitions(chain))
        assert refused == [], f"legal moves refused: {[r.reason for r in refused]}"

    @rule(seconds=st.integers(1, 30))
    def advance_clock(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(alive=st.sampled_from([None, ("model",), ("other",)]))
    def recover(self, alive: tuple[str, ...] | None) -> None:
        lapsed = alive is not None and "model" not in alive  # every claim of the machine is by "model"
        expired = {i for i, job in self.jobs.items() if job.status is Status.EXECUTING and job.lease_until is not None
                   and (lapsed or job.lease_until <= self.now)}
        recovered = [job for job in self.run(self.store.recover(now=self.now, alive=alive)) if job.id in self.jobs]
        assert sorted(job.id for job in recovered) == sorted(expired), "recover did not take exactly the expired"
        for job_id in expired:
            job = self.jobs[job_id]
            job.status, job.due_at, job.lease_until = Status.FAILED, None, None

    @rule()
    def purge(self) -> None:
        before = self.now - timedelta(days=1)
        gone = {e for e, (received, ids) in self.events.items()
                if received < before and all(self.jobs[i].status in FINAL_STATUSES for i in ids)}
        count = self.run(self.store.purge(before=before))
        assert count >= len(gone), f"purge said {count}, but {len(gone)} of this test's events were purgeable"
        for event_id in gone:
            assert self.run(self.store.get_event(event_id)) is None, f"event {event_id} was not purged"
            for job_id in self.events.pop(event_id)[1]:
                assert self.run(self.store.get_job(job_id)) is None, f"job {job_id} survived its event's purge"
                del self.jobs[job_id]

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def history_is_legal_append_only_and_gives_the_status(self) -> None:
        for job_id, expected in self.jobs.items():
            job = self.run(self.store.get_job(job_id))
            assert job is not None, f"job {job_id} vanished"
            history = [_seen(t) for t in job.transitions]
            assert history[:len(expected.history)] == expected.history, f"job {job_id}: the history changed"
            expected.history = history
            previous: Status | None = None
            for t in job.transitions:
                assert t.state_before == previous, f"job {job_id}: {t.state_before} does not follow {previous}"
                assert t.state_after in ALLOWED_TRANSITIONS[previous], (
                    f"job {job_id}: illegal move {t.state_before} -> {t.state_after} stored")
                previous = t.state_after
            latest = job.transitions[-1]
            assert (job.status, job.attempt) == (latest.state_after, latest.attempt), (
                f"job {job_id}: its status is not its latest transition's")
            assert (job.status, job.attempt) == (expected.status, expected.attempt), (
                f"job {job_id} is {job.status} (attempt {job.attempt}); the model says {expected.status} "
                f"(attempt {expected.attempt})")

    @invariant()
    def find_jobs_agrees(self) -> None:
        found = self.run(self.store.find_jobs(WhereJob(sources=[self.names.source], page=Page(limit=1000))))
        assert {job.id: job.status for job in found} == {i: job.status for i, job in self.jobs.items()}


def run_store_model(make_store: StoreFactory, *, max_examples: int = 30, steps: int = 30, shrink: bool = True) -> None:
    """Run :class:`StoreMachine` on stores made by ``make_store`` (each example opens its
    own in a new event loop, so call this outside a running loop, e.g. in a thread).

    A failure raises the failing assertion, after hypothesis shrank the steps to a short
    sequence (unless ``shrink`` is false) and printed them.
    """
    class Machine(StoreMachine):
        def __init__(self) -> None:
            super().__init__(make_store)

    run_state_machine_as_test(Machine, settings=settings(
        max_examples=max_examples, stateful_step_count=steps, deadline=None, database=None,
        phases=tuple(Phase) if shrink else (Phase.generate,),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))


class StoreModelSuite(AdapterSuite):
    """The model-based store test as a suite: subclass it and override ``adapter_url`` (or
    ``make_adapter``), as for :class:`~core.testing.StoreSuite`.

    :cvar max_examples: examples hypothesis runs (each a fresh sequence of steps).
    :cvar steps: most steps of one example.
    """

    kind = "store"
    max_examples: ClassVar[int] = 30
    steps: ClassVar[int] = 30

    @pytest.mark.timeout(300)
    async def test_the_store_follows_the_model(self, make_adapter: StoreFactory) -> None:
        await asyncio.to_thread(run_store_model, make_adapter, max_examples=self.max_examples, steps=self.steps)
