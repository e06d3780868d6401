"""What the dashboard reads beyond the admin API's lists: recent activity by action (the
transitions of the last hour in time buckets), the oldest waiting job of an action, an action's
failed and discarded counts, and its recent failures grouped by error message.

Each read stays flat as the history grows: the activity walks ``ix_transitions_created_at``
over the window only; the per-action reads use ``ix_job_state_action_status`` (store schema 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from sqlalchemy import Integer, cast, extract, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.sqlstore.schema import job_state, jobs, transitions
from hookspecs import Status

#: The failing jobs of an action whose errors are grouped (the newest first).
FAILURES_READ = 1000
_FAILING = (Status.FAILED.value, Status.DISCARDED.value)


@dataclass(frozen=True, slots=True)
class Failure:
    """One error message of an action's failing jobs: how many, when last, and one job with it."""

    error: str
    count: int
    last_at: datetime
    job_id: str


@dataclass(frozen=True, slots=True)
class ActionSummary:
    """An action's failed and discarded job counts, and its oldest job not yet run (id, created)."""

    failed: int
    discarded: int
    oldest_waiting: tuple[str, datetime] | None


@runtime_checkable
class ActivityStore(Protocol):
    """A store offering the dashboard's own reads (the SQL stores do; a store without them gets
    pages with no chart and no failure groups)."""

    async def activity(self, since: datetime, bucket_seconds: int) -> list[tuple[str, str, str, int, int]]:
        """Transitions since ``since`` by action, status reached and time bucket."""

    async def action_summary(self, destination: str, action: str) -> ActionSummary:
        """An action's failed and discarded counts and its oldest waiting job."""

    async def failures(self, destination: str, action: str) -> list[Failure]:
        """An action's recent failures grouped by error message."""


async def add_dashboard_indexes(conn: AsyncConnection) -> None:
    """Store schema 5 -> 6: the indexes of the dashboard's reads (either may exist already)."""
    for table, name in ((transitions, "ix_transitions_created_at"), (job_state, "ix_job_state_action_status")):
        index = next(i for i in table.indexes if i.name == name)
        await conn.run_sync(index.create, checkfirst=True)


async def activity(conn: AsyncConnection, since: datetime, bucket_seconds: int) -> list[tuple[str, str, str, int, int]]:
    """``(destination, action, state_after, bucket, count)`` of the loads' outcomes since
    ``since`` (the transitions out of ``executing``); ``bucket`` is the Unix time of the
    transition divided by ``bucket_seconds``."""
    bucket = cast(extract("epoch", transitions.c.created_at), Integer) // bucket_seconds
    query = (
        select(job_state.c.destination, job_state.c.action, transitions.c.state_after, bucket, func.count())
        .select_from(transitions.join(job_state, job_state.c.job_seq == transitions.c.job_seq))
        .where(transitions.c.created_at >= since, transitions.c.state_before == Status.EXECUTING.value)
        .group_by(job_state.c.destination, job_state.c.action, transitions.c.state_after, bucket)
    )
    return [(d, a, s, int(b), int(n)) for d, a, s, b, n in (await conn.execute(query)).all()]


async def oldest_waiting(conn: AsyncConnection, destination: str, action: str) -> tuple[str, datetime] | None:
    """The id and creation time of the action's oldest job not yet run (acknowledged or awaiting)."""
    firsts = [
        select(job_state.c.job_seq)
        .where(job_state.c.destination == destination, job_state.c.action == action, job_state.c.status == status)
        .order_by(job_state.c.job_seq).limit(1).scalar_subquery()
        for status in (Status.ACKNOWLEDGED.value, Status.AWAITING.value)
    ]
    query = select(jobs.c.id, jobs.c.created_at).where(jobs.c.seq.in_(firsts)).order_by(jobs.c.seq).limit(1)
    row = (await conn.execute(query)).first()
    return None if row is None else (row.id, row.created_at)


async def action_summary(conn: AsyncConnection, destination: str, action: str) -> ActionSummary:
    """The :class:`ActionSummary` of one action."""
    query = (
        select(job_state.c.status, func.count())
        .where(job_state.c.destination == destination, job_state.c.action == action,
               job_state.c.status.in_(_FAILING))
        .group_by(job_state.c.status)
    )
    counts = {status: int(n) for status, n in (await conn.execute(query)).all()}
    return ActionSummary(
        failed=counts.get(Status.FAILED.value, 0),
        discarded=counts.get(Status.DISCARDED.value, 0),
        oldest_waiting=await oldest_waiting(conn, destination, action),
    )


async def failures(conn: AsyncConnection, destination: str, action: str, limit: int = 20) -> list[Failure]:
    """The error messages of the failed loads of the action's newest :data:`FAILURES_READ`
    failed or discarded jobs, the most frequent first."""
    failing = (
        select(job_state.c.job_seq)
        .where(job_state.c.destination == destination, job_state.c.action == action,
               job_state.c.status.in_(_FAILING))
        .order_by(job_state.c.job_seq.desc()).limit(FAILURES_READ).subquery()
    )
    error = func.coalesce(transitions.c.error, "")
    query = (
        select(error, func.count(), func.max(transitions.c.created_at), func.max(jobs.c.id))
        .select_from(failing.join(transitions, transitions.c.job_seq == failing.c.job_seq)
                     .join(jobs, jobs.c.seq == failing.c.job_seq))
        .where(transitions.c.state_after.in_(_FAILING), transitions.c.state_before == Status.EXECUTING.value)
        .group_by(error).order_by(func.count().desc()).limit(limit)
    )
    return [Failure(e, int(n), last, job) for e, n, last, job in (await conn.execute(query)).all()]
