"""Test data for adapter and pipeline tests: events, jobs, transitions and queues.

Everything is built the way the gateway and scheduler build it (KSUIDs, UTC timestamps,
first transitions ``acknowledged``), so an adapter author never writes these by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hookspecs import Event, Job, Queue, Status, Transition, new_id


@dataclass(frozen=True, slots=True)
class Names:
    """Source, destination and action names of one test, so tests can share a database."""

    source: str
    destination: str
    action: str

    @classmethod
    def unique(cls) -> Names:
        suffix = uuid.uuid4().hex[:10]
        return cls(f"src_{suffix}", f"dst_{suffix}", "load")


def utcnow() -> datetime:
    """Now, in UTC, to the millisecond (what every store keeps exactly)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def same_time(a: datetime | None, b: datetime | None, *, tolerance: float = 0.001) -> bool:
    """Tell whether two timestamps are the same instant, within ``tolerance`` seconds."""
    if a is None or b is None:
        return a is b
    return abs((a - b).total_seconds()) <= tolerance


def make_job(
    event: Event,
    destination: str = "crm",
    action: str = "identify",
    *,
    data: Any = None,
    context: dict[str, Any] | None = None,
    parent_job_id: str | None = None,
    version: str | None = None,
    created_at: datetime | None = None,
) -> Job:
    """A new job of ``destination.action`` for ``event`` (status ``acknowledged``)."""
    created = created_at or event.received_at
    return Job(
        id=new_id(created.timestamp()),
        destination=destination,
        action=action,
        event_id=event.id,
        context=dict(event.context if context is None else context),
        data=event.data if data is None else data,
        created_at=created,
        version=version,
        parent_job_id=parent_job_id,
    )


def make_event(
    *,
    source: str = "shop",
    name: str = "order",
    data: Any = None,
    context: dict[str, Any] | None = None,
    actions: Iterable[tuple[str, str]] = (("crm", "identify"),),
    received_at: datetime | None = None,
    sent_at: datetime | None = None,
) -> Event:
    """A new event of ``source`` named ``name`` with one job per ``(destination, action)``."""
    received = received_at or utcnow()
    event = Event(
        id=new_id(received.timestamp()),
        source=source,
        name=name,
        context={"ip": "127.0.0.1", "tags": ["a", "é"]} if context is None else context,
        data={"order": 1, "items": [{"sku": "x", "qty": 2}], "note": "café"} if data is None else data,
        received_at=received,
        sent_at=sent_at,
        ingested_at=received,
    )
    event.jobs = [make_job(event, destination, action) for destination, action in actions]
    return event


def make_events(count: int, **fields: Any) -> list[Event]:
    """``count`` events built by :func:`make_event` with the same ``fields``."""
    return [make_event(**fields) for _ in range(count)]


def make_queue(
    destination: str = "crm", action: str = "identify", *, events: int = 3, jobs_per_event: int = 1, **fields: Any
) -> Queue:
    """A queue as a ``load`` receives it: ``events`` events whose jobs all belong to one action."""
    pairs = [(destination, action)] * jobs_per_event
    queue = Queue(events=make_events(events, actions=pairs, **fields))
    for job in queue.jobs:
        job.status = Status.EXECUTING
        job.attempt = 1
    return queue


def make_transition(
    job: Job,
    state_after: Status,
    *,
    attempt: int | None = None,
    error: str | None = None,
    due_at: datetime | None = None,
    at: datetime | None = None,
) -> Transition:
    """The next transition of ``job``: from its current status to ``state_after``.

    ``attempt`` defaults to the job's, plus one when the job starts ``executing``.
    """
    if attempt is None:
        attempt = job.attempt + 1 if state_after is Status.EXECUTING else job.attempt
    created = at or utcnow()
    return Transition(
        id=new_id(created.timestamp()),
        job_id=job.id,
        event_id=job.event_id,
        attempt=attempt,
        state_before=job.status,
        state_after=state_after,
        created_at=created,
        error=error,
        due_at=due_at,
    )


def advance(job: Job, transition: Transition) -> Job:
    """Apply a transition to a local copy of a job, the way a store reports it afterwards."""
    job.status, job.attempt, job.due_at = transition.state_after, transition.attempt, transition.due_at
    return job


def ids(items: Sequence[Event] | Sequence[Job]) -> list[str]:
    """The ids of events or jobs, in the given order."""
    return [item.id for item in items]


def later(moment: datetime, seconds: float) -> datetime:
    """``moment`` shifted by ``seconds`` (negative for earlier)."""
    return moment + timedelta(seconds=seconds)
