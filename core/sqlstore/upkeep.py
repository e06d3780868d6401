"""Maintenance: purge finished history, rebuild the ``job_state`` summary from the history.

Purge is the only delete of history rows. It removes, a chunk of events per transaction,
events older than a time whose jobs are all final (and, given a filter, all match it), with
their jobs, transitions and ``job_state`` rows: an event's history goes whole or not at all.
Rebuilding recomputes ``job_state`` from each job's latest transition (by insertion order),
which is what the writes keep it equal to.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, func, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.sqlstore import reads
from core.sqlstore.schema import NO_DUE_TIME, UTCDateTime, events, job_state, jobs, transitions
from hookspecs import FINAL_STATUSES, WhereJob


async def purge_chunk(conn: AsyncConnection, before: datetime, limit: int, where: WhereJob | None = None) -> int:
    """Delete up to ``limit`` finished events received before ``before`` (with ``where``: only
    those with jobs, every one of which matches it); return how many."""
    state = jobs.outerjoin(job_state, job_state.c.job_seq == jobs.c.seq)
    final = job_state.c.status.in_([s.value for s in FINAL_STATUSES])
    kept = or_(job_state.c.status.is_(None), ~final)
    if where is not None and (clauses := reads.job_clauses(where)):
        kept = or_(kept, ~and_(*clauses))
    conditions = [events.c.received_at < before,
                  ~select(jobs.c.seq).select_from(state).where(jobs.c.event_id == events.c.id, kept).exists()]
    if where is not None:
        conditions.append(select(jobs.c.seq).where(jobs.c.event_id == events.c.id).exists())
    query = select(events.c.id).where(*conditions).order_by(events.c.id).limit(limit)
    ids = list((await conn.execute(query)).scalars())
    if not ids:
        return 0
    job_seqs = select(jobs.c.seq).where(jobs.c.event_id.in_(ids)).scalar_subquery()
    await conn.execute(delete(transitions).where(transitions.c.job_seq.in_(job_seqs)))
    await conn.execute(delete(job_state).where(job_state.c.job_seq.in_(job_seqs)))
    await conn.execute(delete(jobs).where(jobs.c.event_id.in_(ids)))
    await conn.execute(delete(events).where(events.c.id.in_(ids)))
    return len(ids)


async def rebuild_state(conn: AsyncConnection) -> int:
    """Recompute every ``job_state`` row from the history; return how many jobs it holds."""
    history = transitions.alias("history")
    latest = (
        select(func.max(history.c.seq)).where(history.c.job_seq == jobs.c.seq).correlate(jobs).scalar_subquery()
    )
    rows = select(
        jobs.c.seq, jobs.c.destination, jobs.c.action, transitions.c.state_after, transitions.c.attempt,
        transitions.c.due_at, func.coalesce(transitions.c.due_at, literal(NO_DUE_TIME, UTCDateTime())),
        transitions.c.lease_owner, transitions.c.lease_expires_at,
    ).select_from(jobs.join(transitions, transitions.c.seq == latest))
    await conn.execute(delete(job_state))
    columns = ["job_seq", "destination", "action", "status", "attempt", "due_at", "ready_at",
               "lease_owner", "lease_expires_at"]
    result = await conn.execute(insert(job_state).from_select(columns, rows))
    return int(result.rowcount)
