"""The tables of one in-memory database (:class:`~core.testing.MemoryStore`): event and job
rows, each job's current state beside its append-only transitions, and the indexes that keep a
claim or a recovery costing what it returns (a claim heap per action, a lease heap, per-key
turns for ordered actions, the executing jobs of each action for concurrency limits).
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import orjson

from hookspecs import CLAIMABLE_STATUSES, FINAL_STATUSES, DisabledFlow, Event, Job, Pause, Status, Transition

#: The ready time of a job without a due time: before every real time (claimed first).
NO_DUE_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is refused rather than guessed (as SQL stores do)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} given to the store; use a UTC-aware one")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


@dataclass(slots=True)
class EventRow:
    """A stored event: its fields, JSON as text, and the ids of its jobs in insertion order."""

    id: str
    source: str
    name: str
    context: bytes
    data: bytes
    received_at: datetime
    sent_at: datetime | None
    ingested_at: datetime
    job_ids: list[str] = field(default_factory=list)

    def event(self) -> Event:
        return Event(
            id=self.id, source=self.source, name=self.name, context=orjson.loads(self.context),
            data=orjson.loads(self.data), received_at=self.received_at, sent_at=self.sent_at,
            ingested_at=self.ingested_at,
        )


@dataclass(slots=True)
class JobRow:
    """A stored job: its fields, its current state and its history.

    ``seq`` is the insertion order (claim order among jobs due at the same time); ``stamp``
    changes with every change of state, so a heap entry made for an earlier state is stale.
    """

    seq: int
    id: str
    event_id: str
    destination: str
    action: str
    context: bytes
    data: bytes
    created_at: datetime
    version: str | None
    parent_job_id: str | None
    idempotency_key: str | None
    status: Status
    attempt: int
    due_at: datetime | None
    history: list[Transition]
    lease_expires_at: datetime | None = None
    lease_owner: str | None = None
    ordering_key: str | None = None
    stamp: int = 0

    @property
    def ready_at(self) -> datetime:
        return self.due_at or NO_DUE_TIME

    def job(self, *, with_history: bool = False) -> Job:
        return Job(
            id=self.id, destination=self.destination, action=self.action, event_id=self.event_id,
            context=orjson.loads(self.context), data=orjson.loads(self.data), created_at=self.created_at,
            version=self.version, parent_job_id=self.parent_job_id, idempotency_key=self.idempotency_key,
            ordering_key=self.ordering_key, status=self.status, attempt=self.attempt,
            due_at=self.due_at, transitions=[replace(t) for t in self.history] if with_history else [],
        )


#: A heap entry: (time, job seq, job stamp, job). ``seq`` is unique, so the job is never compared.
_Entry = tuple[datetime, int, int, JobRow]


class Database:
    """The tables of one in-memory database and the indexes that keep claims cheap."""

    def __init__(self) -> None:
        self.events: dict[str, EventRow] = {}
        self.jobs: dict[str, JobRow] = {}
        #: Claimable jobs by (destination, action), ordered by ready time then seq.
        self.ready: dict[tuple[str, str], list[_Entry]] = {}
        #: Unfinished jobs with an ordering key by (destination, action, key), oldest first: only
        #: the first is claimable (the others enter ``ready`` when it becomes final).
        self.turns: dict[tuple[str, str, str], list[JobRow]] = {}
        #: Ids of the executing jobs by (destination, action): what a concurrency limit counts.
        self.executing: dict[tuple[str, str], set[str]] = {}
        #: Jobs claimed under a lease, ordered by the lease's end.
        self.leases: list[_Entry] = []
        self.seqs = itertools.count(1)
        #: Idempotency keys by (source, key): (event id, fingerprint, end of the window).
        self.keys: dict[tuple[str, str], tuple[str, str, datetime]] = {}
        #: Paused actions by (destination, action); action "*": the whole destination.
        self.pauses: dict[tuple[str, str], Pause] = {}
        #: Disabled flows by name.
        self.disabled: dict[str, DisabledFlow] = {}
        #: Token buckets by key: (tokens, when they were counted).
        self.buckets: dict[str, tuple[float, datetime]] = {}
        self._event_order: list[str] = []
        self._job_order: list[str] = []
        self._sorted = True

    def set_state(self, row: JobRow, status: Status, attempt: int, due_at: datetime | None,
                  lease_expires_at: datetime | None = None, lease_owner: str | None = None) -> None:
        """Make ``status`` the job's current state and index it where it can be claimed or recovered."""
        row.status, row.attempt, row.due_at, row.lease_expires_at = status, attempt, due_at, lease_expires_at
        row.lease_owner = lease_owner
        row.stamp += 1
        running = self.executing.setdefault((row.destination, row.action), set())
        if status is Status.EXECUTING:
            running.add(row.id)
        else:
            running.discard(row.id)
        if row.ordering_key is not None and not self._take_turn(row):
            return
        if status in CLAIMABLE_STATUSES:
            self._make_ready(row)
        elif lease_expires_at is not None:
            heapq.heappush(self.leases, (lease_expires_at, row.seq, row.stamp, row))

    def _make_ready(self, row: JobRow) -> None:
        entry = (row.ready_at, row.seq, row.stamp, row)
        heapq.heappush(self.ready.setdefault((row.destination, row.action), []), entry)

    def _take_turn(self, row: JobRow) -> bool:
        """Keep the key's queue of unfinished jobs up to date; whether ``row`` is first in it.

        A final job leaves the queue; the job after it, if claimable, enters ``ready``.
        """
        assert row.ordering_key is not None
        queue = self.turns.setdefault((row.destination, row.action, row.ordering_key), [])
        at = bisect.bisect_left(queue, row.seq, key=lambda r: r.seq)
        present = at < len(queue) and queue[at] is row
        if row.status not in FINAL_STATUSES:
            if not present:
                queue.insert(at, row)
            return at == 0
        if present:
            del queue[at]
            if at == 0 and queue and queue[0].status in CLAIMABLE_STATUSES:
                queue[0].stamp += 1
                self._make_ready(queue[0])
        return True

    def in_turn(self, row: JobRow) -> bool:
        """``row`` has no ordering key, or is the oldest unfinished job of its key."""
        if row.ordering_key is None:
            return True
        return self.turns[(row.destination, row.action, row.ordering_key)][0] is row

    def add_event(self, row: EventRow) -> None:
        self.events[row.id] = row
        self._event_order.append(row.id)
        self._sorted = False

    def add_job(self, row: JobRow) -> None:
        self.jobs[row.id] = row
        self.events[row.event_id].job_ids.append(row.id)
        self._job_order.append(row.id)
        self._sorted = False
        self.set_state(row, row.status, row.attempt, row.due_at)

    def ordered(self, which: str, after: str | None) -> Iterator[str]:
        """Every event or job id (``which``) after ``after``, in id order (sorted when read:
        KSUIDs arrive nearly in order, so the sort is close to linear)."""
        if not self._sorted:
            self._event_order.sort()
            self._job_order.sort()
            self._sorted = True
        order = self._event_order if which == "events" else self._job_order
        start = 0 if after is None else bisect.bisect_right(order, after)
        return itertools.islice(order, start, None)

    def pop_due(self, heap: list[_Entry], now: datetime, limit: int | None = None) -> list[JobRow]:
        """Take from ``heap`` the live entries due at ``now`` (at most ``limit``), in heap order."""
        found: list[JobRow] = []
        while heap and heap[0][0] <= now and (limit is None or len(found) < limit):
            _, _, stamp, row = heapq.heappop(heap)
            if stamp == row.stamp and self.in_turn(row):
                found.append(row)
        return found

    def owned_by_others(self, alive: set[str]) -> list[JobRow]:
        """The executing jobs (live lease entries) whose claim owner is not in ``alive``."""
        return [row for _, _, stamp, row in self.leases
                if stamp == row.stamp and row.lease_owner is not None and row.lease_owner not in alive]

    def remove_events(self, ids: set[str]) -> None:
        """Delete events with their jobs and history (purge). Their heap entries are stale
        already: a purged job is final, so its state changed since it was last indexed."""
        for event_id in ids:
            for job_id in self.events.pop(event_id).job_ids:
                del self.jobs[job_id]
        self._event_order = [i for i in self._event_order if i not in ids]
        self._job_order = [i for i in self._job_order if i in self.jobs]


_DATABASES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Database]] = (
    weakref.WeakKeyDictionary()
)


def database(name: str) -> Database:
    """The database ``name`` of the running event loop (created empty on first use)."""
    return _DATABASES.setdefault(asyncio.get_running_loop(), {}).setdefault(name, Database())
