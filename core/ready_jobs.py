"""The realtime message: how the gateway tells schedulers, through the pub/sub broker, that
jobs of one action are ready.

One message per (destination, action) per committed batch carries the job ids, and their
events' ids (so a scheduler reads the events while it claims the jobs): the store holds the
jobs, so a message lost or duplicated costs a claim, never a job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

from hookspecs import Job, Message

VERSION = "1"


@dataclass(frozen=True, slots=True)
class ReadyJobs:
    """Jobs of one action ready to be claimed."""

    destination: str
    action: str
    job_ids: tuple[str, ...]
    #: The jobs' events (empty in a message of a gateway from before they were sent).
    event_ids: tuple[str, ...] = ()


def encode(jobs: Iterable[Job], trace: Mapping[str, str] | None = None) -> list[Message]:
    """Group jobs by action into messages (keyed by ``destination.action``); ``trace`` (the
    ``traceparent`` / ``tracestate`` of the publishing span) goes into the attributes."""
    groups: dict[tuple[str, str], tuple[list[str], dict[str, None]]] = defaultdict(lambda: ([], {}))
    for job in jobs:
        ids, events = groups[(job.destination, job.action)]
        ids.append(job.id)
        events[job.event_id] = None
    return [
        Message(
            body=orjson.dumps({"v": VERSION, "destination": d, "action": a, "jobs": ids, "events": list(events)}),
            attributes={"content-type": "application/json", "core-message": "ready-jobs", **(trace or {})},
            key=f"{d}.{a}",
        )
        for (d, a), (ids, events) in groups.items()
    ]


def decode(message: Message) -> ReadyJobs:
    """Read a realtime message; ``ValueError`` if it is not one."""
    try:
        body = orjson.loads(message.body)
        return ReadyJobs(body["destination"], body["action"], tuple(body["jobs"]), tuple(body.get("events", ())))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a core realtime message: {exc}") from None
