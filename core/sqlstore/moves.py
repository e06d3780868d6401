"""Guarded transitions: a batch's ``add_transitions`` checked against the jobs' current status.

Inside the writer's transaction, ONE ``SELECT`` (per :data:`~core.sqlstore.claims.IN_CHUNK`
jobs) reads the current status and attempt of every job the batch moves, locked by the dialect where other
transactions may write meanwhile (PostgreSQL: ``FOR UPDATE OF job_state``); the rule of
:func:`hookspecs.check_transitions` splits the moves into accepted and refused; the accepted
ones are inserted and made their jobs' state with the same multi-row statements as before. So
the guard costs one indexed read per batch, not a query per transition, and two writers never
both move a job from the same status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ARRAY, BindParameter, Select, bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from core.sqlstore.claims import JOBS_WITH_STATE, Compiled, InsertRows, Lock, among, chunked, compiled
from core.sqlstore.idempotency import duplicates_of
from core.sqlstore.rows import state_update, transition_row
from core.sqlstore.schema import ID, job_state, jobs, transitions
from core.sqlstore.writer import Work, WriteSet
from hookspecs import Duplicate, RefusedTransition, Status, Transition, check_transitions

#: The store's multi-row state update (:meth:`~core.sqlstore.store.SQLStore.update_states`).
UpdateStates = Callable[[AsyncConnection, list[dict[str, Any]]], Awaitable[int]]
#: The store's locked read of the current status and attempt of the named jobs
#: (:meth:`~core.sqlstore.store.SQLStore.current_states`).
CurrentStates = Callable[[AsyncConnection, Sequence[str]], Awaitable[dict[str, tuple[Status, int]]]]


def current_of(job_ids: Sequence[str] | BindParameter[Any]) -> Select[Any]:
    """The id, current status and attempt of the named jobs (a list, or an array parameter: see
    :func:`~core.sqlstore.claims.among`), in ``job_seq`` order (the lock order)."""
    return (
        select(jobs.c.id, job_state.c.status, job_state.c.attempt).select_from(JOBS_WITH_STATE)
        .where(among(jobs.c.id, job_ids)).order_by(job_state.c.job_seq)
    )


def compiled_current(dialect: Dialect, lock: Lock) -> Compiled:
    """:func:`current_of` (locked by ``lock``) compiled once for ``dialect``, the ids bound as one
    array (argument ``job_ids``): for a store that reads the guard on its driver."""
    return compiled(lock(current_of(bindparam("job_ids", None, type_=ARRAY(ID)))), dialect, {"job_ids"})


def moved_ids(moves: Iterable[Transition]) -> list[str]:
    """The ids of the jobs ``moves`` name, each once."""
    return list(dict.fromkeys(t.job_id for t in moves))


def states(rows: Iterable[Sequence[Any]]) -> dict[str, tuple[Status, int]]:
    """``(job id, status, attempt)`` rows as a mapping for :func:`hookspecs.check_transitions`."""
    return {job_id: (Status(status), attempt) for job_id, status, attempt in rows}


async def read_current(conn: AsyncConnection, job_ids: Sequence[str], lock: Lock) -> dict[str, tuple[Status, int]]:
    """The current status and attempt of the named jobs (:func:`current_of`, locked by ``lock``)."""
    current: dict[str, tuple[Status, int]] = {}
    for chunk in chunked(job_ids):
        current |= states((await conn.execute(lock(current_of(chunk)))).all())
    return current


async def apply(conn: AsyncConnection, moves: list[Transition], current: CurrentStates, insert_rows: InsertRows,
                update_states: UpdateStates) -> list[RefusedTransition]:
    """Store the legal ``moves`` (transitions and job states); return the refused ones."""
    accepted, refused = check_transitions(moves, await current(conn, moved_ids(moves)))
    if accepted:
        await insert_rows(conn, transitions, [transition_row(t) for t in accepted])
        await update_states(conn, [state_update(t) for t in accepted])
    return refused


def results(batch: Sequence[Work], refused: list[RefusedTransition],
            duplicates: Mapping[str, Duplicate]) -> list[list[Any] | None]:
    """Each row-insert piece's own result: the refused moves of an ``add_transitions`` piece,
    the duplicate events of an ``insert_queue`` one (``None`` for other work, whose result the
    transaction computes itself)."""
    output: list[list[Any] | None] = []
    for work in batch:
        if not isinstance(work, WriteSet):
            output.append(None)
        elif work.moves:
            mine = {id(t) for t in work.moves}
            output.append([r for r in refused if id(r.transition) in mine] if refused else [])
        else:
            output.append(duplicates_of(work, duplicates))
    return output
