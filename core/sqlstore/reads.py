"""Queries: find events and jobs by filter with keyset paging, get one with its details.

Results are ordered by id (KSUIDs sort by creation time); ``page.after`` continues after the
last id seen, which stays fast however deep the page (no ``OFFSET``).

Where the database compares ids byte by byte (:func:`ids_sort_as_bytes`: SQLite, PostgreSQL
with the ``C`` collation), so that KSUIDs sort by time, a time bound (``received_after``,
``created_after``) also bounds the id from below: an event's id is made after its
``received_at`` is taken, a job's after its ``created_at``, so no match sorts before the first
id of that second (less :data:`CLOCK_SLACK`, for a clock stepped back in between). Without it,
a page of recent rows ordered by id walks the primary key from the oldest row: a million rows
read to find fifty.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import ARRAY, BindParameter, ColumnElement, Integer, Select, and_, bindparam, literal, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from core.sqlstore.claims import JOB_COLUMNS, JOBS_WITH_STATE, Compiled, among, compiled
from core.sqlstore.rows import event_from_row, job_from_row, transition_from_row
from core.sqlstore.schema import ID, events, job_state, jobs, transitions
from hookspecs import Event, Job, Status, WhereEvent, WhereJob
from hookspecs._ids import ALPHABET, first_id

#: How far back of a time bound its id bound starts: a wall clock stepped back between taking
#: a row's time and making its id.
CLOCK_SLACK = timedelta(minutes=1)


def _values(statuses: Any) -> list[str]:
    return [Status(status).value for status in statuses]


def _ids_from(moment: datetime) -> str:
    """The id every row stamped after ``moment`` sorts at or after."""
    return first_id((moment - CLOCK_SLACK).timestamp())


async def ids_sort_as_bytes(conn: AsyncConnection) -> bool:
    """Whether the database orders the characters of ids as bytes (a linguistic collation,
    such as ``en_US.UTF-8``, puts ``a`` before ``Z``: KSUIDs do not sort by time there)."""
    ordered = and_(*(literal(a, ID) < literal(b, ID) for a, b in pairwise(ALPHABET)))
    return bool((await conn.execute(select(ordered))).scalar())


async def find_events(conn: AsyncConnection, where: WhereEvent, id_bounds: bool = False) -> list[Event]:
    """The events of ``where`` (``id_bounds``: its time bound bounds the id too, see above)."""
    if where.page.limit <= 0:
        return []
    clauses: list[ColumnElement[bool]] = []
    if where.ids:
        clauses.append(among(events.c.id, list(where.ids)))
    if where.sources:
        clauses.append(events.c.source.in_(list(where.sources)))
    if where.names:
        clauses.append(events.c.name.in_(list(where.names)))
    if where.received_after is not None:
        clauses.append(events.c.received_at > where.received_after)
        if id_bounds:
            clauses.append(events.c.id >= _ids_from(where.received_after))
    if where.received_before is not None:
        clauses.append(events.c.received_at < where.received_before)
    if where.page.after is not None:
        clauses.append(events.c.id > where.page.after)
    return [event_from_row(row) for row in (await conn.execute(events_where(clauses, where.page.limit))).all()]


def events_where(clauses: Sequence[ColumnElement[bool]], limit: int | BindParameter[Any]) -> Select[Any]:
    """The events that meet ``clauses``, by id, at most ``limit`` of them."""
    return select(events).where(*clauses).order_by(events.c.id).limit(limit)


def compiled_events_by_id(dialect: Dialect) -> Compiled:
    """:func:`find_events` of ids alone (the scheduler's read of each batch it loads) compiled once
    for ``dialect``, the ids bound as one array (arguments ``ids`` and ``limit``): for a store that
    reads it on its driver. Its columns are those of ``events``, in table order."""
    ids = bindparam("ids", None, type_=ARRAY(ID))
    return compiled(events_where([among(events.c.id, ids)], bindparam("limit", None, type_=Integer())), dialect,
                    {"ids", "limit"})


def job_clauses(where: WhereJob, id_bounds: bool = False) -> list[ColumnElement[bool]]:
    """The conditions of ``where`` (its page aside) on ``jobs``, ``job_state`` and, for
    ``sources`` / ``events_in``, ``events`` (joined, or correlated, by the caller);
    ``id_bounds``: a time bound bounds the id too."""
    clauses: list[ColumnElement[bool]] = []
    if where.sources:
        clauses.append(events.c.source.in_(list(where.sources)))
    if where.events_in:
        clauses.append(events.c.name.in_(list(where.events_in)))
    if where.ids:
        clauses.append(jobs.c.id.in_(list(where.ids)))
    if where.event_ids:
        clauses.append(jobs.c.event_id.in_(list(where.event_ids)))
    if where.destinations_in:
        clauses.append(jobs.c.destination.in_(list(where.destinations_in)))
    if where.actions_in:
        clauses.append(jobs.c.action.in_(list(where.actions_in)))
    if where.status_in:
        clauses.append(job_state.c.status.in_(_values(where.status_in)))
    if where.status_not_in:
        clauses.append(job_state.c.status.not_in(_values(where.status_not_in)))
    if where.max_attempts is not None:
        clauses.append(job_state.c.attempt <= where.max_attempts)
    if where.created_after is not None:
        clauses.append(jobs.c.created_at > where.created_after)
        if id_bounds:
            clauses.append(jobs.c.id >= _ids_from(where.created_after))
    if where.created_before is not None:
        clauses.append(jobs.c.created_at < where.created_before)
    return clauses


async def find_jobs(conn: AsyncConnection, where: WhereJob, id_bounds: bool = False) -> list[Job]:
    """The jobs of ``where`` (``id_bounds``: its time bound bounds the id too, see above)."""
    if where.page.limit <= 0:
        return []
    source = JOBS_WITH_STATE
    if where.sources or where.events_in:
        source = source.join(events, events.c.id == jobs.c.event_id)
    clauses = job_clauses(where, id_bounds)
    if where.page.after is not None:
        clauses.append(jobs.c.id > where.page.after)
    query = select(*JOB_COLUMNS).select_from(source).where(*clauses).order_by(jobs.c.id).limit(where.page.limit)
    return [job_from_row(row) for row in (await conn.execute(query)).all()]


async def get_event(conn: AsyncConnection, event_id: str) -> Event | None:
    row = (await conn.execute(select(events).where(events.c.id == event_id))).one_or_none()
    if row is None:
        return None
    event = event_from_row(row)
    query = select(*JOB_COLUMNS).select_from(JOBS_WITH_STATE).where(jobs.c.event_id == event_id).order_by(jobs.c.id)
    event.jobs = [job_from_row(job) for job in (await conn.execute(query)).all()]
    return event


async def get_job(conn: AsyncConnection, job_id: str) -> Job | None:
    query = select(*JOB_COLUMNS).select_from(JOBS_WITH_STATE).where(jobs.c.id == job_id)
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        return None
    job = job_from_row(row)
    history = select(transitions).where(transitions.c.job_seq == row.seq).order_by(transitions.c.seq)
    job.transitions = [transition_from_row(t) for t in (await conn.execute(history)).all()]
    return job
