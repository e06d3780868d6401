"""The realtime message: how the gateway tells schedulers, through the pub/sub broker, that
jobs of one action are ready.

One message per (destination, action) per committed batch carries the job ids only: the
store holds the jobs, so a message lost or duplicated costs a claim, never a job.
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


def encode(jobs: Iterable[Job], trace: Mapping[str, str] | None = None) -> list[Message]:
    """Group jobs by action into messages (keyed by ``destination.action``); ``trace`` (the
    ``traceparent`` / ``tracestate`` of the publishing span) goes into the attributes."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for job in jobs:
        groups[(job.destination, job.action)].append(job.id)
    return [
        Message(
            body=orjson.dumps({"v": VERSION, "destination": d, "action": a, "jobs": ids}),
            attributes={"content-type": "application/json", "core-message": "ready-jobs", **(trace or {})},
            key=f"{d}.{a}",
        )
        for (d, a), ids in groups.items()
    ]


def decode(message: Message) -> ReadyJobs:
    """Read a realtime message; ``ValueError`` if it is not one."""
    try:
        body = orjson.loads(message.body)
        return ReadyJobs(body["destination"], body["action"], tuple(body["jobs"]))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a core realtime message: {exc}") from None
