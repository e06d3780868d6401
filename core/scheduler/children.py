"""Follow-up actions become child jobs: ``on_succeeded`` / ``on_failed`` / ``on_discarded``.

A child job belongs to the parent's event (``event_id``) and names its parent
(``parent_job_id``). Its payload is made by the child action's ``marshal``, applied to the
parent's event as the action would see it: the event's id, source, name and times, with the
context and data of the *parent job* (what the parent action had marshaled), so a chain of
actions passes its transformed payload along. ``marshal`` returning ``None`` skips the child;
raising, or naming an action that does not exist, is logged and creates no child (the parent's
own transition is recorded regardless).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from core.errors import PipelineError
from core.pipeline import Pipeline
from core.scheduler.then import FollowUp, error_text
from hookspecs import Action, Event, Job, Payload, Status, Toolkit, new_id

log = logging.getLogger("core.scheduler")


async def make_children(
    pipeline: Pipeline,
    follow_ups: Sequence[FollowUp],
    events: Mapping[str, Event],
    toolkit: Toolkit,
    *,
    destination: str,
    now: datetime,
) -> list[Job]:
    """Marshal every follow-up of a load of ``destination`` into an ``acknowledged`` child job.

    :param events: the events of the load's queue by id (the children's events).
    :param toolkit: the scheduler's toolkit; each marshal gets it with its event and job ids.
    """
    children: list[Job] = []
    for follow_up in follow_ups:
        parent = follow_up.parent
        where = f"follow-up {follow_up.ref!r} of job {parent.id} ({parent.destination}.{parent.action})"
        try:
            child_dest, child_action = pipeline.action(follow_up.ref, default_destination=destination)
        except PipelineError as exc:
            log.error("%s: %s; no child job created", where, exc.message)
            continue
        event = events.get(parent.event_id)
        seen = Event(
            id=parent.event_id,
            source=event.source if event else "",
            name=event.name if event else "",
            context=parent.context,
            data=parent.data,
            received_at=event.received_at if event else parent.created_at,
            sent_at=event.sent_at if event else None,
            ingested_at=event.ingested_at if event else None,
        )
        job_id = new_id()
        try:
            payload = await _marshal(child_action, seen, toolkit.evolve(
                event_id=parent.event_id, job_id=job_id, idempotency_key=parent.idempotency_key or ""))
        except Exception as exc:  # noqa: BLE001 - a user's marshal failing creates no child, reported
            log.error("%s: marshal failed: %s; no child job created", where, error_text(exc))
            continue
        if payload is None:
            continue
        if not isinstance(payload, Payload):
            log.error("%s: marshal returned %r, not a Payload; no child job created", where, payload)
            continue
        child = Job(
            id=job_id,
            destination=child_dest.name,
            action=child_action.name,
            event_id=parent.event_id,
            context=parent.context if payload.context is None else payload.context,
            data=payload.data,
            created_at=now,
            version=payload.version,
            parent_job_id=parent.id,
            idempotency_key=parent.idempotency_key,
            status=Status.ACKNOWLEDGED,
        )
        child.ordering_key = child_action.ordering_key_for(child)
        children.append(child)
    return children


async def _marshal(action: Action, event: Event, toolkit: Toolkit) -> object:
    """Call ``marshal`` (plain or ``async``); what it returns is checked by the caller."""
    payload: object = action.marshal(event, toolkit)
    if inspect.isawaitable(payload):
        payload = await payload
    return payload


def realtime_jobs(pipeline: Pipeline, jobs: Sequence[Job]) -> list[Job]:
    """The jobs whose action is realtime (to publish after they are stored)."""
    return [job for job in jobs if pipeline.schedule_of(job.destination, job.action).realtime]

