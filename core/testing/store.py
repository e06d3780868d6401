"""The store conformance suite: append-only history, safe claims, correct queries.

Checks what the store protocol of :mod:`hookspecs` promises. Every test names its own sources, destinations
and actions, so the suite also runs against a database shared between tests; ``purge`` is a
capability. The query checks are in :mod:`core.testing._store_queries`, the idempotency
checks in :mod:`core.testing._store_idempotency`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from core.testing._base import AdapterPool, AdapterSuite, requires
from core.testing._store_idempotency import StoreIdempotencyChecks
from core.testing._store_queries import StoreQueryChecks
from core.testing.data import Names, advance, ids, later, make_event, make_job, make_transition, same_time, utcnow
from hookspecs import (
    LEASE_EXPIRED,
    OWNER_LAPSED,
    Capability,
    Claim,
    DisabledFlow,
    Event,
    FlowSwitchStore,
    Job,
    Pause,
    PausingStore,
    Queue,
    Status,
    Store,
    Transition,
    WhereJob,
    is_allowed,
)


async def move(store: Store, job: Job, *states: Status, at: datetime | None = None, **fields: Any) -> Job:
    """Append one transition per state to ``job`` (each its own write) and track it locally."""
    for state in states:
        transition = make_transition(job, state, at=at, **fields)
        await store.add_transitions([transition])
        advance(job, transition)
    return job


async def adapter_job(store: Store, job_id: str) -> Job:
    """The stored job ``job_id`` with its history (it must exist)."""
    job = await store.get_job(job_id)
    assert job is not None, f"job {job_id} is not in the store"
    return job


def history_of(job: Job) -> list[tuple[object, ...]]:
    return [(t.id, t.state_before, t.state_after, t.attempt, t.error) for t in job.transitions]


class StoreSuite(StoreIdempotencyChecks, StoreQueryChecks, AdapterSuite):
    """Subclass it and override ``adapter_url`` (or ``make_adapter``).

    ``adapter_url`` should give an empty store per test when it can (a temporary file, a
    database or schema of its own); the suite does not require it.
    """

    kind = "store"

    @pytest.fixture
    def names(self) -> Names:
        return Names.unique()

    async def insert(self, store: Store, names: Names, count: int, action: str | None = None) -> list[Job]:
        """Store ``count`` events of ``names.source``, one job each for ``names.destination``."""
        events = [make_event(source=names.source, actions=[(names.destination, action or names.action)])
                  for _ in range(count)]
        await store.insert_queue(Queue(events=events))
        return [job for event in events for job in event.jobs]

    async def claim(self, store: Store, names: Names, *, limit: int = 100, now: datetime | None = None,
                    action: str | None = None, lease: float = 300.0) -> list[Job]:
        return await store.claim(Claim(owner="suite", lease_seconds=lease), destination=names.destination,
                                 action=action or names.action, limit=limit, now=now or utcnow())

    # -- writes and history --------------------------------------------------------------

    async def test_adapter_is_a_store(self, adapter: Store) -> None:
        assert isinstance(adapter, Store)

    async def test_insert_queue_stores_events_jobs_and_first_transitions(self, adapter: Store, names: Names) -> None:
        sent_at = later(utcnow(), -5)
        one = make_event(source=names.source, name="signup", sent_at=sent_at,
                         actions=[(names.destination, "a1"), (names.destination, "a2")])
        two = make_event(source=names.source, actions=[(names.destination, "a1")])
        await adapter.insert_queue(Queue(events=[one, two]))
        got = await adapter.get_event(one.id)
        assert got is not None
        assert (got.id, got.source, got.name) == (one.id, one.source, "signup")
        assert (got.context, got.data) == (one.context, one.data)
        assert same_time(got.received_at, one.received_at) and same_time(got.sent_at, sent_at)
        assert sorted(ids(got.jobs)) == sorted(ids(one.jobs))
        for job in one.jobs:
            stored = await adapter.get_job(job.id)
            assert stored is not None
            assert (stored.destination, stored.action, stored.event_id, stored.context, stored.data) == (
                job.destination, job.action, one.id, job.context, job.data)
            assert (stored.status, stored.attempt, stored.parent_job_id) == (Status.ACKNOWLEDGED, 0, None)
            [first] = stored.transitions
            assert (first.job_id, first.event_id, first.state_before, first.state_after, first.attempt) == (
                job.id, one.id, None, Status.ACKNOWLEDGED, 0)
        assert await adapter.get_event(two.id) is not None

    async def test_unknown_ids_give_none(self, adapter: Store) -> None:
        assert await adapter.get_event(make_event().id) is None
        assert await adapter.get_job(make_event().jobs[0].id) is None

    async def test_json_context_and_data_round_trip(self, adapter: Store, names: Names) -> None:
        data = [{"n": 1, "x": 1.5, "ok": True, "none": None, "text": "naïve ✓", "nested": {"l": [1, [2]]}}]
        event = make_event(source=names.source, data=data, context={"ua": "curl/8", "n": [1, 2]},
                           actions=[(names.destination, names.action)])
        await adapter.insert_queue(Queue(events=[event]))
        got = await adapter.get_event(event.id)
        assert got is not None and (got.data, got.context) == (data, {"ua": "curl/8", "n": [1, 2]})
        job = await adapter.get_job(event.jobs[0].id)
        assert job is not None and job.data == data

    async def test_add_jobs_stores_follow_ups_of_an_event(self, adapter: Store, names: Names) -> None:
        [parent] = await self.insert(adapter, names, 1)
        event = await adapter.get_event(parent.event_id)
        assert event is not None
        child = make_job(event, names.destination, "follow_up", parent_job_id=parent.id, data={"from": parent.id},
                         version="v2")
        await adapter.add_jobs([child])
        got = await adapter.get_job(child.id)
        assert got is not None
        assert (got.parent_job_id, got.event_id, got.action, got.version, got.data) == (
            parent.id, parent.event_id, "follow_up", "v2", {"from": parent.id})
        assert [t.state_after for t in got.transitions] == [Status.ACKNOWLEDGED]
        again = await adapter.get_event(parent.event_id)
        assert again is not None and sorted(ids(again.jobs)) == sorted([parent.id, child.id])

    async def test_history_is_append_only_and_status_follows_the_latest_transition(
        self, adapter: Store, names: Names
    ) -> None:
        [job] = await self.insert(adapter, names, 1)
        before = await adapter.get_job(job.id)
        assert before is not None
        steps: list[tuple[Status, dict[str, Any]]] = [
            (Status.EXECUTING, {}),
            (Status.FAILED, {"error": "HTTP 503", "due_at": later(utcnow(), 60)}),
            (Status.EXECUTING, {}),
            (Status.SUCCEEDED, {}),
        ]
        for state, fields in steps:
            await move(adapter, job, state, **fields)
            after = await adapter.get_job(job.id)
            assert after is not None
            assert history_of(after)[:-1] == history_of(before), "an earlier transition changed"
            latest = after.transitions[-1]
            assert (latest.state_before, latest.state_after) == (before.status, state)
            assert (after.status, after.attempt) == (state, latest.attempt)
            assert latest.error == fields.get("error")
            before = after
        assert [t.attempt for t in before.transitions] == [0, 1, 1, 2, 2]

    async def test_add_transitions_updates_many_jobs_at_once(self, adapter: Store, names: Names) -> None:
        await self.insert(adapter, names, 3)
        jobs = await self.claim(adapter, names)
        final = [Status.SUCCEEDED, Status.DISCARDED, Status.UNKNOWN]
        transitions: list[Transition] = [make_transition(job, state, error=None if state is Status.SUCCEEDED
                                                         else "why") for job, state in zip(jobs, final, strict=True)]
        assert await adapter.add_transitions(transitions) == []
        for job, state in zip(jobs, final, strict=True):
            got = await adapter.get_job(job.id)
            assert got is not None and got.status is state

    # -- refused transitions ---------------------------------------------------------------

    async def test_add_transitions_refuses_moves_that_do_not_start_from_the_current_status(
        self, adapter: Store, names: Names
    ) -> None:
        done, other = await self.insert(adapter, names, 2)
        await move(adapter, done, Status.EXECUTING, Status.SUCCEEDED)
        stale = make_transition(replace(done, status=Status.EXECUTING), Status.FAILED, error="late")
        again = make_transition(done, Status.EXECUTING)
        legal = make_transition(other, Status.EXECUTING)
        refused = await adapter.add_transitions([stale, again, legal])
        assert [(r.transition.id, r.current) for r in refused] == [
            (stale.id, Status.SUCCEEDED), (again.id, Status.SUCCEEDED)]
        assert done.id in refused[0].reason and "succeeded" in refused[0].reason
        assert "executing -> failed" in refused[0].reason
        got = await adapter.get_job(done.id)
        assert got is not None and got.status is Status.SUCCEEDED
        assert [t.state_after for t in got.transitions] == [Status.ACKNOWLEDGED, Status.EXECUTING, Status.SUCCEEDED]
        stored = await adapter.get_job(other.id)
        assert stored is not None and stored.status is Status.EXECUTING, "a legal transition of the call was lost"

    async def test_add_transitions_refuses_moves_not_in_the_table(self, adapter: Store, names: Names) -> None:
        [job] = await self.insert(adapter, names, 1)
        illegal = [make_transition(job, state) for state in Status if not is_allowed(Status.ACKNOWLEDGED, state)]
        refused = await adapter.add_transitions(illegal)
        assert [r.transition.id for r in refused] == [t.id for t in illegal]
        assert all(r.current is Status.ACKNOWLEDGED and "not an allowed move" in r.reason for r in refused)
        got = await adapter.get_job(job.id)
        assert got is not None and len(got.transitions) == 1

    async def test_add_transitions_refuses_a_stale_write_of_an_earlier_attempt(
        self, adapter: Store, names: Names
    ) -> None:
        now = utcnow()
        await self.insert(adapter, names, 1)
        [first] = await self.claim(adapter, names, now=now, lease=10)
        assert [j.id for j in await adapter.recover(now=later(now, 20)) if j.id == first.id] == [first.id]
        [second] = await self.claim(adapter, names, now=later(now, 21))
        assert second.attempt == first.attempt + 1
        stale = make_transition(first, Status.SUCCEEDED)  # executing, attempt 1: its lease ran out
        [refused] = await adapter.add_transitions([stale])
        assert (refused.transition.id, refused.current, refused.attempt) == (stale.id, Status.EXECUTING, 2)
        assert "stale" in refused.reason
        released = make_transition(second, Status.AWAITING, attempt=second.attempt - 1)  # a release gives it back
        assert await adapter.add_transitions([released]) == []
        got = await adapter_job(adapter, first.id)
        assert (got.status, got.attempt) == (Status.AWAITING, 1)

    async def test_add_transitions_refuses_a_job_not_in_the_store(self, adapter: Store, names: Names) -> None:
        [job] = await self.insert(adapter, names, 1)
        ghost = make_event(source=names.source, actions=[(names.destination, names.action)]).jobs[0]
        missing = make_transition(ghost, Status.EXECUTING)
        refused = await adapter.add_transitions([missing, make_transition(job, Status.EXECUTING)])
        assert [(r.transition.id, r.current) for r in refused] == [(missing.id, None)]
        assert ghost.id in refused[0].reason

    async def test_concurrent_writers_never_both_move_a_job_from_one_status(
        self, adapters: AdapterPool, names: Names
    ) -> None:
        one, two = await adapters.open(), await adapters.open()
        await self.insert(one, names, 20)
        claimed = await self.claim(one, names)
        outcomes = [[make_transition(job, state) for job in claimed] for state in (Status.SUCCEEDED, Status.FAILED)]
        refusals = await asyncio.gather(*(store.add_transitions(ts) for store, ts in zip([one, two], outcomes,
                                                                                         strict=True)))
        assert sum(len(r) for r in refusals) == len(claimed), "a job was moved twice from executing"
        for job in claimed:
            got = await adapter_job(one, job.id)
            assert [t.state_before for t in got.transitions].count(Status.EXECUTING) == 1

    async def test_transitions_of_one_job_in_one_batch_apply_in_order(self, adapter: Store, names: Names) -> None:
        [job] = await self.insert(adapter, names, 1)
        first = make_transition(job, Status.EXECUTING)
        second = make_transition(advance(job, first), Status.FAILED, error="timeout")
        third = make_transition(advance(job, second), Status.EXECUTING)
        await adapter.add_transitions([first, second, third])
        got = await adapter.get_job(job.id)
        assert got is not None
        assert [t.id for t in got.transitions[1:]] == [first.id, second.id, third.id]
        assert (got.status, got.attempt) == (Status.EXECUTING, 2)

    async def test_a_failed_write_stores_nothing(self, adapter: Store, names: Names) -> None:
        existing = make_event(source=names.source, actions=[(names.destination, names.action)])
        await adapter.insert_queue(Queue(events=[existing]))
        fresh = make_event(source=names.source, actions=[(names.destination, names.action)])
        with pytest.raises(Exception):  # noqa: B017 - any error, as long as nothing is stored
            await adapter.insert_queue(Queue(events=[fresh, existing]))
        assert await adapter.get_event(fresh.id) is None, "half of a failed insert_queue was stored"
        assert await adapter.get_job(fresh.jobs[0].id) is None

    async def test_a_failed_add_jobs_stores_nothing(self, adapter: Store, names: Names) -> None:
        [parent] = await self.insert(adapter, names, 1)
        event = await adapter.get_event(parent.event_id)
        assert event is not None
        fresh = make_job(event, names.destination, "follow_up", parent_job_id=parent.id)
        with pytest.raises(Exception):  # noqa: B017 - any error, as long as nothing is stored
            await adapter.add_jobs([fresh, parent])
        assert await adapter.get_job(fresh.id) is None, "half of a failed add_jobs was stored"

    async def test_data_survives_a_reopen(self, adapters: AdapterPool, names: Names) -> None:
        store = await adapters.open()
        [job] = await self.insert(store, names, 1)
        await store.close()
        await store.open()
        got = await store.get_job(job.id)
        assert got is not None and got.status is Status.ACKNOWLEDGED

    # -- claims ----------------------------------------------------------------------------

    async def test_claim_moves_due_jobs_to_executing(self, adapter: Store, names: Names) -> None:
        jobs = await self.insert(adapter, names, 3)
        claimed = await self.claim(adapter, names, limit=10)
        assert sorted(ids(claimed)) == sorted(ids(jobs))
        assert {(j.status, j.attempt) for j in claimed} == {(Status.EXECUTING, 1)}
        got = await adapter.get_job(jobs[0].id)
        assert got is not None
        assert [(t.state_before, t.state_after, t.attempt) for t in got.transitions] == [
            (None, Status.ACKNOWLEDGED, 0), (Status.ACKNOWLEDGED, Status.EXECUTING, 1)]
        assert await self.claim(adapter, names, limit=10) == [], "an executing job was claimed again"

    async def test_claim_respects_limit_destination_and_action(self, adapter: Store, names: Names) -> None:
        await self.insert(adapter, names, 5)
        others = await self.insert(adapter, names, 2, action=names.action + "_other")
        elsewhere = make_event(source=names.source, actions=[(names.destination + "_other", names.action)])
        await adapter.insert_queue(Queue(events=[elsewhere]))
        first = await self.claim(adapter, names, limit=3)
        rest = await self.claim(adapter, names, limit=10)
        assert (len(first), len(rest)) == (3, 2)
        assert {(j.destination, j.action) for j in first + rest} == {(names.destination, names.action)}
        assert sorted(ids(await self.claim(adapter, names, action=names.action + "_other"))) == sorted(ids(others))

    async def test_claim_respects_due_at(self, adapter: Store, names: Names) -> None:
        now = utcnow()
        later_job, due_job, awaiting = await self.insert(adapter, names, 3)
        await move(adapter, later_job, Status.EXECUTING)
        await move(adapter, later_job, Status.FAILED, error="503", due_at=later(now, 60))
        await move(adapter, due_job, Status.EXECUTING)
        await move(adapter, due_job, Status.FAILED, error="503", due_at=later(now, -1))
        await move(adapter, awaiting, Status.EXECUTING, Status.AWAITING)
        assert sorted(ids(await self.claim(adapter, names, now=now))) == sorted([due_job.id, awaiting.id])
        claimed = await self.claim(adapter, names, now=later(now, 61))
        assert ids(claimed) == [later_job.id]
        assert claimed[0].attempt == 2

    async def test_claim_takes_only_claimable_statuses(self, adapter: Store, names: Names) -> None:
        jobs = await self.insert(adapter, names, 6)
        await move(adapter, jobs[0], Status.EXECUTING, Status.SUCCEEDED)
        await move(adapter, jobs[1], Status.EXECUTING, Status.DISCARDED, error="gave up")
        await move(adapter, jobs[2], Status.EXECUTING, Status.UNKNOWN)
        await move(adapter, jobs[3], Status.EXECUTING, Status.FAILED, error="retry")
        await move(adapter, jobs[4], Status.EXECUTING, Status.AWAITING)
        assert sorted(ids(await self.claim(adapter, names, limit=100))) == sorted(ids(jobs[3:]))

    async def insert_keyed(self, store: Store, names: Names, keys: Sequence[str | None]) -> list[Job]:
        """One event per key in ``keys``, in that order, with a job ordered by the key."""
        events = []
        for key in keys:
            event = make_event(source=names.source, actions=[(names.destination, names.action)])
            event.jobs[0].ordering_key = key
            events.append(event)
        await store.insert_queue(Queue(events=events))
        return [event.jobs[0] for event in events]

    @requires(Capability.ORDERING)
    async def test_claim_takes_the_oldest_unfinished_job_of_each_key(self, adapter: Store, names: Names) -> None:
        keys = ["a", "b", "a", None, "b", "a", None]
        a1, b1, a2, free1, b2, a3, free2 = await self.insert_keyed(adapter, names, keys)
        now = utcnow()
        claimed = {job.id: job for job in await self.claim(adapter, names, now=now)}
        assert sorted(claimed) == sorted(ids([a1, b1, free1, free2]))
        assert await self.claim(adapter, names, now=now) == [], "a key's next job was claimed while one executed"
        await move(adapter, claimed[a1.id], Status.FAILED, error="503", due_at=later(now, 60), at=now)
        await move(adapter, claimed[b1.id], Status.SUCCEEDED, at=now)
        assert ids(await self.claim(adapter, names, now=now)) == [b2.id], "a failing key let a later job pass"
        [retried] = await self.claim(adapter, names, now=later(now, 61))
        assert retried.id == a1.id, "the failing job was not retried first"
        await move(adapter, retried, Status.DISCARDED, error="gave up", at=later(now, 62))
        [second] = await self.claim(adapter, names, now=later(now, 63))
        assert second.id == a2.id, "a discarded job kept its key"
        await move(adapter, second, Status.SUCCEEDED, at=later(now, 64))
        assert ids(await self.claim(adapter, names, now=later(now, 65))) == [a3.id]

    @requires(Capability.ORDERING)
    async def test_claim_ids_honours_ordering_keys(self, adapter: Store, names: Names) -> None:
        first, second, other = await self.insert_keyed(adapter, names, ["k", "k", "j"])
        claimed = await adapter.claim_ids(Claim(owner="suite", lease_seconds=60), ids([second, first, other]),
                                          now=utcnow())
        assert sorted(ids(claimed)) == sorted(ids([first, other]))
        got = await adapter.get_job(second.id)
        assert got is not None and got.ordering_key == "k" and got.status is Status.ACKNOWLEDGED

    # -- concurrency limits ----------------------------------------------------------------

    @requires(Capability.CONCURRENCY)
    async def test_claim_leaves_at_most_concurrency_jobs_executing(self, adapter: Store, names: Names) -> None:
        jobs = await self.insert(adapter, names, 6)
        other = await self.insert(adapter, names, 2, action=f"{names.action}-other")
        now, claim = utcnow(), Claim(owner="suite", lease_seconds=60)

        async def take(limit: int = 10) -> list[Job]:
            return await adapter.claim(claim, destination=names.destination, action=names.action, limit=limit,
                                       now=now, concurrency=3)

        first = await take(2)
        assert len(first) == 2, "a claim under its limit took fewer than asked"
        assert len(await take()) == 1, "a claim ignored the jobs already executing"
        assert await take() == [], "a claim went past the concurrency limit"
        assert len(await self.claim(adapter, names, action=f"{names.action}-other", now=now)) == len(other), (
            "another action's jobs were held back")
        await move(adapter, first[0], Status.SUCCEEDED, at=now)
        await move(adapter, first[1], Status.FAILED, error="retry", at=now)
        again = await take()
        assert len(again) == 2, "finished jobs did not free their places"
        named = await adapter.claim_ids(claim, ids(jobs), now=now, concurrency=3)
        assert named == [], "claim_ids went past the concurrency limit"
        await move(adapter, again[0], Status.SUCCEEDED, at=now)
        assert len(await adapter.claim_ids(claim, ids(jobs), now=now, concurrency=3)) == 1

    @requires(Capability.CONCURRENCY)
    async def test_concurrent_claimers_share_one_concurrency_limit(self, adapters: AdapterPool, names: Names) -> None:
        one, two = await adapters.open(), await adapters.open()
        await self.insert(one, names, 40)
        now = utcnow()
        rounds = await asyncio.gather(*(
            store.claim(Claim(owner="suite", lease_seconds=60), destination=names.destination, action=names.action,
                        limit=3, now=now, concurrency=5)
            for store in [one, two] * 4
        ))
        assert sum(len(batch) for batch in rounds) == 5, f"8 concurrent claims under a limit of 5 took {rounds}"

    async def test_concurrent_claimers_never_get_the_same_job(self, adapters: AdapterPool, names: Names) -> None:
        one, two = await adapters.open(), await adapters.open()
        jobs = await self.insert(one, names, 40)
        rounds = await asyncio.gather(*(self.claim(store, names, limit=7) for store in [one, two] * 4))
        claimed = [job.id for batch in rounds for job in batch]
        assert len(claimed) == len(set(claimed)), "one job was handed to two claimers"
        leftover = await self.claim(one, names, limit=100)
        assert sorted(claimed + ids(leftover)) == sorted(ids(jobs))

    async def test_claim_ids_claims_the_named_claimable_jobs_only(self, adapter: Store, names: Names) -> None:
        free, done, busy, other = await self.insert(adapter, names, 4)
        await move(adapter, done, Status.EXECUTING, Status.SUCCEEDED)
        [busy_claimed] = await adapter.claim_ids(Claim("first"), [busy.id], now=utcnow())
        assert busy_claimed.status is Status.EXECUTING
        missing = make_event().jobs[0].id
        claimed = await adapter.claim_ids(Claim("second"), [free.id, done.id, busy.id, missing], now=utcnow())
        assert ids(claimed) == [free.id]
        assert (claimed[0].status, claimed[0].attempt) == (Status.EXECUTING, 1)
        untouched = await adapter.get_job(other.id)
        assert untouched is not None and untouched.status is Status.ACKNOWLEDGED

    async def test_concurrent_claim_ids_never_share_a_job(self, adapters: AdapterPool, names: Names) -> None:
        one, two = await adapters.open(), await adapters.open()
        jobs = await self.insert(one, names, 20)
        wanted = ids(jobs)
        batches = await asyncio.gather(*(store.claim_ids(Claim(f"c{i}"), wanted, now=utcnow())
                                         for i, store in enumerate([one, two, one, two])))
        claimed = [job.id for batch in batches for job in batch]
        assert sorted(claimed) == sorted(wanted), "a job was claimed twice or not at all"

    async def test_recover_fails_executing_jobs_whose_claim_lease_ran_out(self, adapter: Store, names: Names) -> None:
        now = utcnow()
        await self.insert(adapter, names, 2)
        await self.insert(adapter, names, 1, action=names.action + "_long")
        short = await self.claim(adapter, names, now=now, lease=10)
        long = await self.claim(adapter, names, now=now, lease=1000, action=names.action + "_long")
        early = await adapter.recover(now=later(now, 5))
        assert not set(ids(early)) & set(ids(short + long)), "a job was recovered before its lease ran out"
        recovered = [j for j in await adapter.recover(now=later(now, 20)) if j.id in ids(short + long)]
        assert sorted(ids(recovered)) == sorted(ids(short))
        for job in recovered:
            got = await adapter.get_job(job.id)
            assert got is not None and got.status is Status.FAILED
            assert (got.transitions[-1].state_before, got.transitions[-1].state_after) == (
                Status.EXECUTING, Status.FAILED)
        still = await adapter.get_job(long[0].id)
        assert still is not None and still.status is Status.EXECUTING
        assert not [j for j in await adapter.recover(now=later(now, 20)) if j.id in ids(short)], "recovered twice"

    async def test_recover_with_alive_fails_the_jobs_of_nodes_not_alive(self, adapter: Store, names: Names) -> None:
        now = utcnow()
        gone_action, alive_action = names.action, names.action + "_alive"
        await self.insert(adapter, names, 2)
        await self.insert(adapter, names, 1, action=alive_action)
        gone = await adapter.claim(Claim("gone", 300), destination=names.destination, action=gone_action,
                                   limit=10, now=now)
        kept = await adapter.claim(Claim("alive", 300), destination=names.destination, action=alive_action,
                                   limit=10, now=now)
        assert len(gone) == 2 and len(kept) == 1
        mine = set(ids(gone + kept))
        assert not [j for j in await adapter.recover(now=later(now, 1)) if j.id in mine], "recovered before the lease"
        recovered = [j for j in await adapter.recover(now=later(now, 1), alive={"alive"}) if j.id in mine]
        assert sorted(ids(recovered)) == sorted(ids(gone)), "recover did not take exactly the jobs of the lapsed node"
        for job in recovered:
            got = await adapter_job(adapter, job.id)
            last = got.transitions[-1]
            assert (got.status, got.attempt) == (Status.FAILED, 1)
            assert (last.state_before, last.state_after, last.attempt, last.error) == (
                Status.EXECUTING, Status.FAILED, 1, OWNER_LAPSED)
        assert (await adapter_job(adapter, kept[0].id)).status is Status.EXECUTING, "an alive node's claim was taken"
        assert not [j for j in await adapter.recover(now=later(now, 1), alive={"alive"}) if j.id in mine], "twice"
        again = await self.claim(adapter, names, now=later(now, 2))
        assert sorted(ids(again)) == sorted(ids(gone)), "the recovered jobs were not due at once"

    async def test_recover_with_alive_still_recovers_expired_leases_as_expired(
        self, adapter: Store, names: Names
    ) -> None:
        now = utcnow()
        await self.insert(adapter, names, 1)
        [job] = await self.claim(adapter, names, now=now, lease=10)
        assert not [j for j in await adapter.recover(now=later(now, 5), alive={"suite"}) if j.id == job.id]
        [recovered] = [j for j in await adapter.recover(now=later(now, 20), alive={"suite"}) if j.id == job.id]
        assert (await adapter_job(adapter, recovered.id)).transitions[-1].error == LEASE_EXPIRED

    # -- backlog (optional: what /metrics shows) -------------------------------------------

    async def test_backlog_counts_unfinished_jobs_by_action_and_status(self, adapter: Store, names: Names) -> None:
        backlog = getattr(adapter, "backlog", None)
        if backlog is None:
            pytest.skip("this store has no backlog() (optional: /metrics then shows no backlog)")
        event = make_event(source=names.source, actions=[(names.destination, names.action)] * 3)
        await adapter.insert_queue(Queue(events=[event]))
        await move(adapter, event.jobs[0], Status.EXECUTING, Status.SUCCEEDED)
        await move(adapter, event.jobs[1], Status.EXECUTING, Status.FAILED, error="retry")
        counts = {key: n for key, n in (await backlog()).items() if key[0] == names.destination}
        assert counts == {(names.destination, names.action, "acknowledged"): 1,
                          (names.destination, names.action, "failed"): 1}

    # -- purge -----------------------------------------------------------------------------

    @requires(Capability.PURGE)
    async def test_purge_deletes_old_events_whose_jobs_are_all_final(self, adapter: Store, names: Names) -> None:
        old, new = later(utcnow(), -2 * 86400), utcnow()

        def event(at: datetime) -> Event:
            return make_event(source=names.source, received_at=at,
                              actions=[(names.destination, names.action), (names.destination, "other")])

        done, pending, recent = event(old), event(old), event(new)
        await adapter.insert_queue(Queue(events=[done, pending, recent]))
        await move(adapter, done.jobs[0], Status.EXECUTING, Status.SUCCEEDED, at=old)
        await move(adapter, done.jobs[1], Status.EXECUTING, Status.DISCARDED, at=old, error="gone")
        await move(adapter, pending.jobs[0], Status.EXECUTING, Status.SUCCEEDED, at=old)
        await move(adapter, pending.jobs[1], Status.EXECUTING, Status.FAILED, at=old, error="retry")
        for job in recent.jobs:
            await move(adapter, job, Status.EXECUTING, Status.SUCCEEDED)
        assert await adapter.purge(before=later(new, -86400)) >= 1
        assert await adapter.get_event(done.id) is None
        assert await adapter.get_job(done.jobs[0].id) is None
        assert await adapter.get_event(pending.id) is not None, "an event with a job still to run was purged"
        assert await adapter.get_event(recent.id) is not None, "a recent event was purged"

    @requires(Capability.PURGE)
    async def test_purge_by_filter_takes_whole_events_whose_jobs_all_match(
        self, adapter: Store, names: Names
    ) -> None:
        old, now = later(utcnow(), -2 * 86400), utcnow()
        dest, other = names.destination, f"{names.destination}-other"

        def event(*destinations: str) -> Event:
            return make_event(source=names.source, received_at=old,
                              actions=[(d, names.action) for d in destinations])

        dropped, mixed, ours, kept, live, empty = (
            event(dest), event(dest, dest), event(dest), event(other), event(dest, dest), event()
        )
        await adapter.insert_queue(Queue(events=[dropped, mixed, ours, kept, live, empty]))
        for job in [dropped.jobs[0], mixed.jobs[0], live.jobs[0]]:
            await move(adapter, job, Status.EXECUTING, Status.DISCARDED, at=old, error="gone")
        for job in [mixed.jobs[1], ours.jobs[0], kept.jobs[0]]:
            await move(adapter, job, Status.EXECUTING, Status.SUCCEEDED, at=old)
        await move(adapter, live.jobs[1], Status.EXECUTING, Status.FAILED, at=old, error="retry")
        where = WhereJob(sources=[names.source], destinations_in=[dest], status_in=[Status.DISCARDED])
        assert await adapter.purge(before=now, where=where) == 1, "only the all-discarded event matches"
        assert await adapter.get_event(dropped.id) is None
        assert await adapter.get_job(dropped.jobs[0].id) is None, "a purged event's job survived"
        assert await adapter.get_event(mixed.id) is not None, "an event was purged with a job not matching"
        assert await adapter.get_job(mixed.jobs[0].id) is not None, "purge split an event's history"
        assert await adapter.get_event(live.id) is not None, "a job went while its event had one to run"
        assert await adapter.get_event(empty.id) is not None, "a filter purged an event without jobs"
        where = WhereJob(sources=[names.source], destinations_in=[dest])
        assert await adapter.purge(before=now, where=where) == 2, "the finished events of dest: mixed, ours"
        assert await adapter.get_event(kept.id) is not None, "an event of another destination was purged"
        assert await adapter.get_job(kept.jobs[0].id) is not None
        assert await adapter.find_jobs(WhereJob(event_ids=[mixed.id, ours.id])) == [], "jobs outlived their event"
        assert await adapter.purge(before=now) >= 2, "the purge by time takes the rest that is finished"
        assert await adapter.get_event(kept.id) is None and await adapter.get_event(empty.id) is None
        assert await adapter.get_event(live.id) is not None, "an event with a job still to run was purged"

    # -- rate limits -----------------------------------------------------------------------

    @requires(Capability.RATE_LIMITS)
    async def test_token_buckets_refill_at_their_rate_up_to_the_burst(self, adapter: Any, names: Names) -> None:
        key, start = f"{names.destination}.{names.action}", utcnow()
        take = adapter.take_tokens
        assert await take(key, 10, rate=2.0, burst=3, now=start) == 3, "a new bucket holds its burst"
        assert await take(key, 1, rate=2.0, burst=3, now=start) == 0, "an empty bucket granted a token"
        assert await take(key, 10, rate=2.0, burst=3, now=later(start, 1)) == 2, "1 s at 2/s is 2 tokens"
        assert await take(key, 1, rate=2.0, burst=3, now=later(start, 1.25)) == 0, "half a token was granted"
        assert await take(key, 1, rate=2.0, burst=3, now=later(start, 1.5)) == 1
        assert await take(key, 10, rate=2.0, burst=3, now=later(start, 60)) == 3, "a quiet bucket exceeded its burst"
        assert await take(f"{key}.other", 1, rate=2.0, burst=3, now=start) == 1, "buckets are not apart"
        assert await take(key, -2, rate=2.0, burst=3, now=later(start, 60)) == 0, "giving back granted tokens"
        assert await take(key, 10, rate=2.0, burst=3, now=later(start, 60)) == 2, "2 tokens given back"
        assert await take(key, -9, rate=2.0, burst=3, now=later(start, 60)) == 0
        assert await take(key, 10, rate=2.0, burst=3, now=later(start, 60)) == 3, "given back past the burst"

    @requires(Capability.RATE_LIMITS)
    async def test_concurrent_takers_share_one_bucket(self, adapters: AdapterPool, names: Names) -> None:
        one, two = await adapters.open(), await adapters.open()
        key, now = f"{names.destination}.{names.action}", utcnow()
        granted = await asyncio.gather(*(store.take_tokens(key, 2, rate=1.0, burst=5, now=now)
                                         for store in [one, two] * 6))
        assert sum(granted) == 5, f"12 concurrent takes of one bucket of 5 were granted {granted}"

    # -- pauses ----------------------------------------------------------------------------

    @requires(Capability.PAUSE)
    async def test_pause_and_resume_are_kept(self, adapter: Any, names: Names) -> None:
        assert isinstance(adapter, PausingStore), "a store declaring Capability.PAUSE is a hookspecs.PausingStore"
        pause = Pause(destination=names.destination, action=names.action, who="ops", created_at=utcnow(),
                      reason="down for maintenance")
        assert await adapter.pause(pause) is True
        assert await adapter.pause(replace(pause, who="other")) is False, "a second pause replaced the first"
        whole = Pause(destination=names.destination, action="*", who="ops", created_at=utcnow())
        assert await adapter.pause(whole) is True
        mine = [p for p in await adapter.pauses() if p.destination == names.destination]
        assert [(p.action, p.who, p.reason) for p in mine] == [("*", "ops", None),
                                                               (names.action, "ops", "down for maintenance")]
        assert await adapter.resume(names.destination, names.action) is True
        assert await adapter.resume(names.destination, names.action) is False
        assert [p.action for p in await adapter.pauses() if p.destination == names.destination] == ["*"]

    # -- disabled flows --------------------------------------------------------------------

    @requires(Capability.FLOWS)
    async def test_disabled_flows_are_kept_with_who_and_why(self, adapter: Any, names: Names) -> None:
        assert isinstance(adapter, FlowSwitchStore), "a store declaring Capability.FLOWS is a hookspecs.FlowSwitchStore"
        flow, other = f"{names.source}-to-{names.destination}", f"{names.source}-audit"
        disabled = DisabledFlow(flow=flow, who="ops", created_at=utcnow(), reason="crm is down")
        assert await adapter.disable_flow(disabled) is True
        again = replace(disabled, who="other")
        assert await adapter.disable_flow(again) is False, "a second disable replaced the first"
        assert await adapter.disable_flow(DisabledFlow(flow=other, who="ops", created_at=utcnow())) is True
        mine = [d for d in await adapter.disabled_flows() if d.flow.startswith(names.source)]
        assert [(d.flow, d.who, d.reason) for d in mine] == [(other, "ops", None), (flow, "ops", "crm is down")]
        assert same_time(mine[1].created_at, disabled.created_at)
        assert await adapter.enable_flow(flow) is True
        assert await adapter.enable_flow(flow) is False
        assert [d.flow for d in await adapter.disabled_flows() if d.flow.startswith(names.source)] == [other]

    @requires(Capability.FLOWS)
    async def test_one_of_concurrent_disables_of_a_flow_wins(self, adapter: Any, names: Names) -> None:
        flow = f"{names.source}-raced"
        attempts = [DisabledFlow(flow=flow, who=f"ops{n}", created_at=utcnow()) for n in range(8)]
        won = await asyncio.gather(*(adapter.disable_flow(d) for d in attempts))
        assert sorted(won) == [False] * 7 + [True]
        [kept] = [d for d in await adapter.disabled_flows() if d.flow == flow]
        assert kept.who == f"ops{won.index(True)}"
