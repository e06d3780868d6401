"""Conversions between the contract's data types and table rows (plain dicts).

Writes build lists of row dicts for multi-row inserts; reads turn result rows back into
:class:`~hookspecs.Event`, :class:`~hookspecs.Job` and :class:`~hookspecs.Transition`.
Statuses go into rows as the :class:`~hookspecs.Status` members themselves: a ``StrEnum``
member is a ``str``, and reading ``.value`` for every row costs more than the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Row as ResultRow

from core.sqlstore.schema import NO_DUE_TIME
from core.sqlstore.writer import Row, WriteSet
from hookspecs import Event, Job, Status, Transition, new_id

#: Prefix of the bound parameters of job_state updates (they must not be column names).
UPDATE_PREFIX = "b_"


def event_row(event: Event, now: datetime) -> Row:
    return {
        "id": event.id, "source": event.source, "name": event.name, "context": event.context,
        "data": event.data, "received_at": event.received_at, "sent_at": event.sent_at,
        "ingested_at": event.ingested_at or now,
    }


def new_jobs(jobs: Iterable[Job], into: WriteSet) -> None:
    """Add jobs, each with its first transition and job_state row, to ``into``.

    The first transition records the job's own ``status`` (the gateway sets ``acknowledged``)
    and ``attempt`` with no state before; ``created_at`` is the job's.
    """
    for job in jobs:
        if job.status is Status.EXECUTING:
            raise ValueError(f"job {job.id} cannot be stored as executing: only a claim moves a job there")
        into.jobs.append({
            "id": job.id, "event_id": job.event_id, "destination": job.destination, "action": job.action,
            "context": job.context, "data": job.data, "version": job.version,
            "parent_job_id": job.parent_job_id, "created_at": job.created_at,
            "idempotency_key": job.idempotency_key, "ordering_key": job.ordering_key,
        })
        into.transitions.append({
            "id": new_id(), "job_ref": job.id, "job_id": job.id, "event_id": job.event_id, "attempt": job.attempt,
            "state_before": None, "state_after": job.status, "error": None, "due_at": job.due_at,
            "created_at": job.created_at, "lease_owner": None, "lease_expires_at": None,
        })
        into.states.append({
            "job_ref": job.id, "destination": job.destination, "action": job.action,
            "status": job.status, "attempt": job.attempt, "due_at": job.due_at,
            "ready_at": job.due_at or NO_DUE_TIME, "lease_owner": None, "lease_expires_at": None,
        })


def transition_row(transition: Transition) -> Row:
    return {
        "id": transition.id, "job_ref": transition.job_id, "job_id": transition.job_id,
        "event_id": transition.event_id,
        "attempt": transition.attempt,
        "state_before": transition.state_before, "state_after": transition.state_after,
        "error": transition.error,
        "due_at": transition.due_at, "created_at": transition.created_at,
        "lease_owner": None, "lease_expires_at": None,
    }


def state_update(transition: Transition) -> Row:
    """Bound parameters that make ``transition`` its job's current state (lease cleared)."""
    p = UPDATE_PREFIX
    return {
        f"{p}job_ref": transition.job_id, f"{p}status": transition.state_after,
        f"{p}attempt": transition.attempt, f"{p}due_at": transition.due_at,
        f"{p}ready_at": transition.due_at or NO_DUE_TIME,
    }


def event_from_row(row: ResultRow[Any]) -> Event:
    return Event(
        id=row.id, source=row.source, name=row.name, context=row.context, data=row.data,
        received_at=row.received_at, sent_at=row.sent_at, ingested_at=row.ingested_at,
    )


def job_from_row(row: ResultRow[Any]) -> Job:
    """A job from a row of ``jobs`` joined with ``job_state`` (status, attempt, due_at)."""
    return Job(
        id=row.id, destination=row.destination, action=row.action, event_id=row.event_id,
        context=row.context, data=row.data, created_at=row.created_at, version=row.version,
        parent_job_id=row.parent_job_id, idempotency_key=row.idempotency_key, ordering_key=row.ordering_key,
        status=Status(row.status),
        attempt=row.attempt, due_at=row.due_at,
    )


def transition_from_row(row: ResultRow[Any]) -> Transition:
    return Transition(
        id=row.id, job_id=row.job_id, event_id=row.event_id, attempt=row.attempt,
        state_before=None if row.state_before is None else Status(row.state_before),
        state_after=Status(row.state_after), created_at=row.created_at, error=row.error, due_at=row.due_at,
    )
