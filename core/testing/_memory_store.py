"""``MemoryStore``: the :class:`~hookspecs.Store` protocol in plain Python, for tests.

The proof that the store protocol can be implemented from scratch (no SQLAlchemy, no SQLite),
as procrastinate's ``InMemoryConnector`` proves its connector, and a fast store for engine
tests that need *a* store but do not test SQL. Stores with the same URL in the same event
loop share one database, as two clients of one server would (``memory://`` and
``memory://name`` are two databases); nothing survives the event loop.

It keeps what the SQL stores keep: events, jobs and their append-only transitions, beside each
job's current state (status, attempt, due time, claim lease); a claim heap per action (due
time, then insertion order) and a lease heap, so that a claim or a recovery costs what it
returns rather than what is stored. Stale heap entries are skipped by a per-job stamp.

Every call validates all it was given before it changes anything, then applies it without an
``await`` in between: concurrent tasks never see half a write and never claim one job twice.
Each call first yields to the event loop once, as a round trip to a database would. JSON values
are kept as orjson text, as a SQL column keeps them, so a caller never shares an object with
the store and a value that is not JSON is refused like a SQL store refuses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Container, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import orjson

from core.testing._memory_tables import Database, EventRow, JobRow, database, utc, utc_or_none
from core.timing import RateLimit, take_tokens
from hookspecs import (
    CLAIMABLE_STATUSES,
    FINAL_STATUSES,
    LEASE_EXPIRED,
    OWNER_LAPSED,
    Claim,
    DisabledFlow,
    Duplicate,
    Event,
    Job,
    Pause,
    Queue,
    RefusedTransition,
    Status,
    StoreUnavailable,
    Transition,
    WhereEvent,
    WhereJob,
    check_transitions,
    new_id,
)


class MemoryStore:
    """The store in memory: ``memory://`` or ``memory://<name>`` (see the module docstring).

    Use it where a test needs a store but does not test SQL; it takes no options.
    """

    def __init__(self, url: str = "memory://") -> None:
        parts = urlsplit(url)
        if parts.scheme != "memory" or parts.query or parts.fragment:
            raise ValueError(f"memory store URL {url!r}: write memory:// or memory://<name>, without a query")
        self.url = url
        self.name = parts.netloc + parts.path
        self._db: Database | None = None

    def __repr__(self) -> str:
        return f"MemoryStore({self.url!r})"

    async def _tables(self) -> Database:
        """The open database, after one yield to the loop (a call is a round trip)."""
        await asyncio.sleep(0)
        if self._db is None:
            raise StoreUnavailable(f"the store {self.url} is closed (or was never opened)")
        return self._db

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Attach to the database of this URL in the running loop; it has no schema to migrate."""
        if self._db is None:
            self._db = database(self.name)

    async def close(self) -> None:
        """Detach; the database keeps its data for the other stores of the loop (and a reopen)."""
        self._db = None

    # -- writes -----------------------------------------------------------------------------

    async def insert_queue(self, queue: Queue) -> list[Duplicate]:
        """Store events, their jobs and each job's first transition, all or nothing; return the
        events not stored because their idempotency key is taken (see :class:`~hookspecs.Store`)."""
        db = await self._tables()
        now = datetime.now(UTC)
        duplicates, keys = _duplicates(db, queue, now)
        if any(not duplicate.same for duplicate in duplicates):
            return duplicates
        if duplicates:
            skipped = {duplicate.event_id for duplicate in duplicates}
            queue = Queue(events=[event for event in queue.events if event.id not in skipped])
        events: list[EventRow] = []
        for event in queue.events:
            for job in event.jobs:
                if job.event_id != event.id:
                    raise ValueError(f"job {job.id} names event {job.event_id} but is queued under {event.id}")
            events.append(EventRow(
                id=event.id, source=event.source, name=event.name, context=orjson.dumps(event.context),
                data=orjson.dumps(event.data), received_at=utc(event.received_at),
                sent_at=utc_or_none(event.sent_at), ingested_at=utc(event.ingested_at or now),
            ))
        _refuse_duplicates("event", [row.id for row in events], db.events)
        jobs = _new_jobs(db, [job for event in queue.events for job in event.jobs], of_stored_events=False)
        for row in events:
            db.add_event(row)
        for job_row in jobs:
            db.add_job(job_row)
        db.keys.update(keys)
        return duplicates

    async def add_jobs(self, jobs: Sequence[Job]) -> None:
        """Store follow-up jobs of stored events, each with a first transition, all or nothing."""
        db = await self._tables()
        for row in _new_jobs(db, jobs, of_stored_events=True):
            db.add_job(row)

    async def add_transitions(self, transitions: Sequence[Transition]) -> list[RefusedTransition]:
        """Append transitions, in order; each becomes its job's state (lease cleared). Those
        that :func:`hookspecs.check_transitions` refuses are returned instead."""
        db = await self._tables()
        stored = [_transition(t) for t in transitions]
        rows = {t.job_id: db.jobs[t.job_id] for t in stored if t.job_id in db.jobs}
        current = {job_id: (row.status, row.attempt) for job_id, row in rows.items()}
        accepted, refused = check_transitions(stored, current)
        given = {id(copy): transition for copy, transition in zip(stored, transitions, strict=True)}
        latest: dict[str, Transition] = {}
        for transition in accepted:
            db.jobs[transition.job_id].history.append(transition)
            latest[transition.job_id] = transition
        for job_id, transition in latest.items():
            db.set_state(db.jobs[job_id], transition.state_after, transition.attempt, transition.due_at)
        return [replace(r, transition=given[id(r.transition)]) for r in refused]

    async def claim(
        self, claim: Claim, *, destination: str, action: str, limit: int, now: datetime,
        concurrency: int | None = None,
    ) -> list[Job]:
        """Move up to ``limit`` due jobs of an action to ``executing`` (due time first, then oldest),
        leaving at most ``concurrency`` of its jobs executing."""
        db = await self._tables()
        now = utc(now)
        if concurrency is not None:
            limit = min(limit, concurrency - len(db.executing.get((destination, action), ())))
        if limit <= 0:
            return []
        heap = db.ready.get((destination, action))
        if not heap:
            return []
        return _start(db, db.pop_due(heap, now, limit), claim, now)

    async def claim_ids(
        self, claim: Claim, job_ids: Sequence[str], *, now: datetime, concurrency: int | None = None
    ) -> list[Job]:
        """Claim the named jobs that are claimable and due, oldest first (at most ``concurrency``
        of an action executing); skip the others."""
        db = await self._tables()
        now = utc(now)
        rows = [db.jobs[i] for i in dict.fromkeys(job_ids) if i in db.jobs]
        due = sorted((r for r in rows if r.status in CLAIMABLE_STATUSES and r.ready_at <= now and db.in_turn(r)),
                     key=lambda r: r.seq)
        if concurrency is not None:
            free = {(r.destination, r.action): concurrency - len(db.executing.get((r.destination, r.action), ()))
                    for r in due}
            kept = []
            for row in due:
                if free[row.destination, row.action] > 0:
                    kept.append(row)
                    free[row.destination, row.action] -= 1
            due = kept
        return _start(db, due, claim, now)

    async def recover(self, *, now: datetime, alive: Collection[str] | None = None) -> list[Job]:
        """Record ``failed`` for executing jobs whose lease ran out or (``alive`` given) whose
        claim owner is not alive (attempt unchanged); return them."""
        db = await self._tables()
        now = utc(now)
        found = {row.id: (row, LEASE_EXPIRED) for row in db.pop_due(db.leases, now)}
        if alive is not None:  # the expired were popped: these are the others
            found |= {row.id: (row, OWNER_LAPSED) for row in db.owned_by_others(set(alive))}
        recovered = sorted(found.values(), key=lambda found: found[0].seq)
        for row, error in recovered:
            row.history.append(Transition(
                id=new_id(), job_id=row.id, event_id=row.event_id, attempt=row.attempt,
                state_before=Status.EXECUTING, state_after=Status.FAILED, created_at=now, error=error,
            ))
            db.set_state(row, Status.FAILED, row.attempt, None)
        return [row.job() for row, _ in recovered]

    async def purge(self, *, before: datetime, where: WhereJob | None = None) -> int:
        """Delete events received before ``before`` whose jobs are all final (with ``where``:
        events with jobs, all matching it); return how many (and the idempotency keys whose
        window has ended)."""
        db = await self._tables()
        now = datetime.now(UTC)
        db.keys = {key: held for key, held in db.keys.items() if held[2] > now}
        before = utc(before)
        match = None if where is None else _JobFilter.of(where)
        ids = frozenset(() if where is None else where.ids)

        def purgeable(row: EventRow) -> bool:
            rows = [db.jobs[j] for j in row.job_ids]
            if not all(job.status in FINAL_STATUSES for job in rows):
                return False
            return match is None or (bool(rows) and all(
                match(job, row) and (not ids or job.id in ids) for job in rows
            ))

        done = {row.id for row in db.events.values() if row.received_at < before and purgeable(row)}
        db.remove_events(done)
        return len(done)

    # -- reads ------------------------------------------------------------------------------

    async def find_events(self, where: WhereEvent) -> list[Event]:
        """Matching events (without jobs), ordered by id, from ``where.page.after`` on."""
        db = await self._tables()
        if where.page.limit <= 0:
            return []
        after, before = utc_or_none(where.received_after), utc_or_none(where.received_before)
        sources, names = set(where.sources), set(where.names)
        found: list[Event] = []
        for event_id in _candidates(db, "events", where.ids, where.page.after):
            row = db.events.get(event_id)
            if row is None or (sources and row.source not in sources) or (names and row.name not in names):
                continue
            if (after is not None and row.received_at <= after) or (before is not None and row.received_at >= before):
                continue
            found.append(row.event())
            if len(found) == where.page.limit:
                break
        return found

    async def pause(self, pause: Pause) -> bool:
        """Pause an action (``action`` ``"*"``: the destination); ``False`` if it was paused."""
        db = await self._tables()
        key = (pause.destination, pause.action)
        if key in db.pauses:
            return False
        db.pauses[key] = pause
        return True

    async def resume(self, destination: str, action: str) -> bool:
        """Resume an action paused with :meth:`pause`; ``False`` if it was not paused."""
        db = await self._tables()
        return db.pauses.pop((destination, action), None) is not None

    async def pauses(self) -> list[Pause]:
        """Every paused action, by destination and action."""
        db = await self._tables()
        return [db.pauses[key] for key in sorted(db.pauses)]

    async def disable_flow(self, disabled: DisabledFlow) -> bool:
        """Disable a flow: gateways make none of its jobs; ``False`` if it was disabled."""
        db = await self._tables()
        if disabled.flow in db.disabled:
            return False
        db.disabled[disabled.flow] = disabled
        return True

    async def enable_flow(self, flow: str) -> bool:
        """Enable a flow disabled with :meth:`disable_flow`; ``False`` if it was not disabled."""
        db = await self._tables()
        return db.disabled.pop(flow, None) is not None

    async def disabled_flows(self) -> list[DisabledFlow]:
        """Every disabled flow, by name."""
        db = await self._tables()
        return [db.disabled[name] for name in sorted(db.disabled)]

    async def take_tokens(self, key: str, wanted: int, *, rate: float, burst: int, now: datetime) -> int:
        """Take up to ``wanted`` tokens from the bucket ``key`` (``rate`` a second, at most
        ``burst``; a new bucket is full); return how many were granted. A negative ``wanted``
        gives unused tokens back."""
        db = await self._tables()
        now = utc(now)
        tokens, updated_at = db.buckets.get(key, (float(burst), now))
        granted, left = take_tokens(tokens, updated_at, wanted, RateLimit(rate, burst), now)
        db.buckets[key] = (left, now)
        return granted

    async def backlog(self) -> dict[tuple[str, str, str], int]:
        """Unfinished jobs by ``(destination, action, status)`` (what ``/metrics`` shows)."""
        db = await self._tables()
        counts: dict[tuple[str, str, str], int] = {}
        for row in db.jobs.values():
            if row.status not in FINAL_STATUSES:
                key = (row.destination, row.action, row.status.value)
                counts[key] = counts.get(key, 0) + 1
        return counts

    async def find_jobs(self, where: WhereJob) -> list[Job]:
        """Matching jobs with their current status, ordered by id, from ``where.page.after`` on."""
        db = await self._tables()
        if where.page.limit <= 0:
            return []
        match = _JobFilter.of(where)
        if where.event_ids and not where.ids:
            listed = [job_id for e in where.event_ids if e in db.events for job_id in db.events[e].job_ids]
            ids: Iterable[str] = _candidates(db, "jobs", listed, where.page.after)
        else:
            ids = _candidates(db, "jobs", where.ids, where.page.after)
        found: list[Job] = []
        for job_id in ids:
            row = db.jobs.get(job_id)
            if row is not None and match(row, db.events[row.event_id]):
                found.append(row.job())
                if len(found) == where.page.limit:
                    break
        return found

    async def get_event(self, event_id: str) -> Event | None:
        """One event with its jobs (ordered by id, with their status), or ``None``."""
        db = await self._tables()
        row = db.events.get(event_id)
        if row is None:
            return None
        event = row.event()
        event.jobs = [db.jobs[job_id].job() for job_id in sorted(row.job_ids)]
        return event

    async def get_job(self, job_id: str) -> Job | None:
        """One job with its full transition history, or ``None``."""
        db = await self._tables()
        row = db.jobs.get(job_id)
        return None if row is None else row.job(with_history=True)


def _refuse_duplicates(what: str, ids: Sequence[str], stored: Container[str]) -> None:
    """Refuse ids stored already or given twice (a SQL store's unique key does the same)."""
    seen: set[str] = set()
    for item in ids:
        if item in stored or item in seen:
            raise ValueError(f"{what} {item} is already stored (ids are unique)")
        seen.add(item)


def _duplicates(
    db: Database, queue: Queue, now: datetime
) -> tuple[list[Duplicate], dict[tuple[str, str], tuple[str, str, datetime]]]:
    """The events of ``queue`` whose key is held (stored within its window, or by an earlier
    event of the queue), and the keys the others take."""
    duplicates: list[Duplicate] = []
    taken: dict[tuple[str, str], tuple[str, str, datetime]] = {}
    for event in queue.events:
        if event.idempotency is None:
            continue
        name = (event.source, event.idempotency.key)
        held = taken.get(name) or db.keys.get(name)
        if held is None or held[2] <= now:
            taken[name] = (event.id, event.idempotency.fingerprint, utc(event.idempotency.expires_at))
        else:
            duplicates.append(Duplicate(event.id, held[0], name[1], same=held[1] == event.idempotency.fingerprint))
    return duplicates, taken


def _new_jobs(db: Database, jobs: Sequence[Job], *, of_stored_events: bool) -> list[JobRow]:
    """Rows for new jobs, each with its first transition; raises before anything is stored.

    The first transition records the job's own ``status`` and ``attempt`` with no state before;
    ``created_at`` is the job's. Follow-ups (``of_stored_events``) must name a stored event.
    """
    rows: list[JobRow] = []
    for job in jobs:
        if job.status is Status.EXECUTING:
            raise ValueError(f"job {job.id} cannot be stored as executing: only a claim moves a job there")
        if of_stored_events and job.event_id not in db.events:
            raise LookupError(f"job {job.id} names event {job.event_id}, which is not in the store")
        created_at, due_at = utc(job.created_at), utc_or_none(job.due_at)
        status = Status(job.status)
        first = Transition(
            id=new_id(), job_id=job.id, event_id=job.event_id, attempt=job.attempt, state_before=None,
            state_after=status, created_at=created_at, due_at=due_at,
        )
        rows.append(JobRow(
            seq=0, id=job.id, event_id=job.event_id, destination=job.destination, action=job.action,
            context=orjson.dumps(job.context), data=orjson.dumps(job.data), created_at=created_at,
            version=job.version, parent_job_id=job.parent_job_id, idempotency_key=job.idempotency_key,
            status=status, attempt=job.attempt, ordering_key=job.ordering_key,
            due_at=due_at, history=[first],
        ))
    _refuse_duplicates("job", [row.id for row in rows], db.jobs)
    for row in rows:
        row.seq = next(db.seqs)
    return rows


def _transition(transition: Transition) -> Transition:
    """A copy of ``transition`` as the store keeps it: UTC times, statuses as :class:`Status`."""
    return replace(
        transition, created_at=utc(transition.created_at), due_at=utc_or_none(transition.due_at),
        state_before=None if transition.state_before is None else Status(transition.state_before),
        state_after=Status(transition.state_after),
    )


def _start(db: Database, rows: Sequence[JobRow], claim: Claim, now: datetime) -> list[Job]:
    """Move ``rows`` to ``executing`` under ``claim``'s lease; return them as jobs."""
    expires = now + timedelta(seconds=claim.lease_seconds)
    for row in rows:
        row.history.append(Transition(
            id=new_id(), job_id=row.id, event_id=row.event_id, attempt=row.attempt + 1,
            state_before=row.status, state_after=Status.EXECUTING, created_at=now,
        ))
        db.set_state(row, Status.EXECUTING, row.attempt + 1, None, lease_expires_at=expires, lease_owner=claim.owner)
    return [row.job() for row in rows]


def _candidates(db: Database, which: str, ids: Sequence[str], after: str | None) -> Iterable[str]:
    """The ids to look at, in id order after ``after``: the given ones, else every stored one."""
    if not ids:
        return db.ordered(which, after)
    return sorted(i for i in set(ids) if after is None or i > after)


@dataclass(frozen=True, slots=True)
class _JobFilter:
    """The fields of a :class:`WhereJob` other than ids and paging, as one test of a job."""

    sources: frozenset[str]
    names: frozenset[str]
    event_ids: frozenset[str]
    destinations: frozenset[str]
    actions: frozenset[str]
    status_in: frozenset[Status]
    status_not_in: frozenset[Status]
    max_attempts: int | None
    created_after: datetime | None
    created_before: datetime | None

    @classmethod
    def of(cls, where: WhereJob) -> _JobFilter:
        return cls(
            frozenset(where.sources), frozenset(where.events_in), frozenset(where.event_ids),
            frozenset(where.destinations_in), frozenset(where.actions_in),
            frozenset(Status(s) for s in where.status_in), frozenset(Status(s) for s in where.status_not_in),
            where.max_attempts, utc_or_none(where.created_after), utc_or_none(where.created_before),
        )

    def __call__(self, job: JobRow, event: EventRow) -> bool:
        return not (
            (self.sources and event.source not in self.sources)
            or (self.names and event.name not in self.names)
            or (self.event_ids and job.event_id not in self.event_ids)
            or (self.destinations and job.destination not in self.destinations)
            or (self.actions and job.action not in self.actions)
            or (self.status_in and job.status not in self.status_in)
            or (self.status_not_in and job.status in self.status_not_in)
            or (self.max_attempts is not None and job.attempt > self.max_attempts)
            or (self.created_after is not None and job.created_at <= self.created_after)
            or (self.created_before is not None and job.created_at >= self.created_before)
        )
