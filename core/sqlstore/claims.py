"""Claims and recovery (lease ran out, or claiming node not alive), run inside the writer's transaction.

A claim costs a constant number of statements whatever its size: one ``SELECT`` of the due
rows through the partial claim index (locked by the dialect's :data:`Lock`, e.g.
``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already makes the
transaction the only writer), one ``UPDATE`` of their ``job_state`` rows and one multi-row
``INSERT`` of their ``executing`` transitions.

Ordering per key (:attr:`hookspecs.Action.ordering_key`) is a condition of that ``SELECT``: a job
with a key is claimable only when no earlier job of its action and key is unfinished, so a claim
takes at most the oldest job of each key, and a key whose oldest job awaits a retry is held back.
Jobs without a key skip the check (``ordering_key IS NULL``).

A concurrency limit (:attr:`hookspecs.Action.concurrency`) trims what that ``SELECT`` found: the
claim counts the action's ``executing`` jobs (one more statement, through the status index, after
the dialect's action lock, e.g. an advisory lock on PostgreSQL, so that concurrent claims of one
action count one after the other) and keeps at most the limit minus that count (:func:`within`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Table,
    Update,
    and_,
    any_,
    exists,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from core.sqlstore.rows import job_from_row
from core.sqlstore.schema import CLAIMABLE_SQL, EXECUTING_SQL, NAME, NO_DUE_TIME, job_state, jobs, transitions
from hookspecs import FINAL_STATUSES, LEASE_EXPIRED, OWNER_LAPSED, Claim, Job, Status, new_id

#: Makes a claim's ``SELECT`` lock what it reads (identity where the transaction already does).
Lock = Callable[[Select[Any]], Select[Any]]
#: The store's multi-row insert (:meth:`~core.sqlstore.store.SQLStore.insert_rows`).
InsertRows = Callable[[AsyncConnection, Table, list[dict[str, Any]]], Awaitable[None]]
#: Bound parameters per ``IN (...)`` list: far below every database's limit.
IN_CHUNK = 2000

T = TypeVar("T")

#: A job's row joined with its current state, as :func:`~core.sqlstore.rows.job_from_row` reads it.
JOB_COLUMNS = (*jobs.c, job_state.c.status, job_state.c.attempt, job_state.c.due_at)
JOBS_WITH_STATE = jobs.join(job_state, job_state.c.job_seq == jobs.c.seq)


def among(column: ColumnElement[Any], ids: Sequence[Any] | BindParameter[Any]) -> ColumnElement[bool]:
    """``column IN (ids)``; for an array parameter (a query :func:`compiled` once, PostgreSQL)
    ``column = ANY(ids)``, one parameter whatever the number of ids."""
    if isinstance(ids, BindParameter):
        return column == any_(ids)
    return column.in_(ids)


def chunked(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _in_turn() -> ColumnElement[bool]:
    """The job has no ordering key, or no earlier job of its action and key is unfinished."""
    earlier, state = jobs.alias("earlier"), job_state.alias("earlier_state")
    unfinished = state.c.status.not_in(sorted(status.value for status in FINAL_STATUSES))
    blocking = (
        select(earlier.c.seq).select_from(earlier.join(state, state.c.job_seq == earlier.c.seq))
        .where(
            earlier.c.destination == jobs.c.destination, earlier.c.action == jobs.c.action,
            earlier.c.ordering_key == jobs.c.ordering_key, earlier.c.seq < jobs.c.seq, unfinished,
        )
    )
    return or_(jobs.c.ordering_key.is_(None), ~exists(blocking))


def due_for(destination: str, action: str, limit: int, now: datetime) -> Select[Any]:
    """Due claimable jobs of one action, in claim order (due time, then age)."""
    return (
        select(*JOB_COLUMNS).select_from(JOBS_WITH_STATE)
        .where(
            job_state.c.destination == destination, job_state.c.action == action,
            CLAIMABLE_SQL, job_state.c.ready_at <= now, _in_turn(),
        )
        .order_by(job_state.c.ready_at, job_state.c.job_seq)
        .limit(limit)
    )


#: Placeholders :func:`compiled_due` compiles :func:`due_for` with, to find which bound parameter
#: each argument became.
_DUE_ARGS: dict[Any, str] = {"\x00destination": "destination", "\x00action": "action", 987_654_321: "limit",
                             datetime(2000, 1, 2, 3, 4, 5, 678_901, tzinfo=NO_DUE_TIME.tzinfo): "now"}


@dataclass(frozen=True, slots=True)
class Compiled:
    """A shared query compiled once for a dialect, for a store that runs it on its driver with
    plain rows (no statement building or per-value type processing per call, which cost more
    than the SQL itself): the text and, per positional parameter, a fixed value or the name of
    an argument of :meth:`bind`."""

    sql: str
    order: tuple[tuple[bool, Any], ...]

    def bind(self, args: Mapping[str, Any]) -> tuple[Any, ...]:
        """The positional parameters for ``args`` (values as the driver takes them)."""
        return tuple(args[value] if is_arg else value for is_arg, value in self.order)


@dataclass(frozen=True, slots=True)
class CompiledClaim(Compiled):
    """:func:`due_for` compiled once for a dialect (see :class:`Compiled`)."""

    def params(self, destination: str, action: str, limit: int, now: Any) -> tuple[Any, ...]:
        """The parameters of one claim (``now`` as the driver takes it)."""
        return self.bind({"destination": destination, "action": action, "limit": limit, "now": now})


def compiled_due(dialect: Dialect, lock: Lock) -> CompiledClaim:
    """:func:`due_for` (locked by ``lock``) compiled for ``dialect`` (see :class:`CompiledClaim`)."""
    sql, order = _compiled(lock(due_for(*_DUE_ARGS)), dialect, set(_DUE_ARGS.values()), lambda _name, value: (
        _DUE_ARGS[value] if _is_placeholder(value) else None))
    return CompiledClaim(sql, order)


def compiled(query: Select[Any], dialect: Dialect, args: Collection[str]) -> Compiled:
    """``query`` compiled for ``dialect`` (a driver with positional parameters), the bound
    parameters named in ``args`` (``bindparam(name, None)``) left to :meth:`Compiled.bind`, the
    others fixed."""
    sql, order = _compiled(query, dialect, args, lambda name, _value: name if name in args else None)
    return Compiled(sql, order)


def _compiled(query: Select[Any], dialect: Dialect, args: Collection[str],
              arg_of: Callable[[str, Any], str | None]) -> tuple[str, tuple[tuple[bool, Any], ...]]:
    """The text of ``query`` and its parameter order (``arg_of``: the argument a bound parameter
    is, by its name and value, or ``None`` for a fixed one); every argument must be bound."""
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    order = tuple(
        (True, arg) if (arg := arg_of(name, values[name])) is not None else (False, values[name])
        for name in compiled.positiontup or ()
    )
    missing = set(args) - {value for is_arg, value in order if is_arg}
    if missing:  # the query no longer binds an argument: its result would be wrong, not slow
        raise RuntimeError(f"the compiled query binds no {', '.join(sorted(missing))}")
    return compiled.string, order


def _is_placeholder(value: Any) -> bool:
    return isinstance(value, str | int | datetime) and not isinstance(value, bool) and value in _DUE_ARGS


def named(job_ids: Sequence[str], now: datetime) -> Select[Any]:
    """The named jobs that are claimable and due, oldest first."""
    return (
        select(*JOB_COLUMNS).select_from(JOBS_WITH_STATE)
        .where(jobs.c.id.in_(job_ids), CLAIMABLE_SQL, job_state.c.ready_at <= now, _in_turn())
        .order_by(job_state.c.job_seq)
    )


def executing(destination: str, action: str) -> Select[Any]:
    """How many jobs of one action are ``executing`` (the status index finds them)."""
    return select(func.count()).select_from(job_state).where(
        EXECUTING_SQL, job_state.c.destination == destination, job_state.c.action == action,
    )


def actions_of(found: Sequence[Any]) -> list[tuple[str, str]]:
    """The ``(destination, action)`` of the rows ``found``, each once, in order."""
    return list(dict.fromkeys((row.destination, row.action) for row in found))


def within(found: Sequence[Any], running: dict[tuple[str, str], int], concurrency: int) -> list[Any]:
    """Of ``found`` (in claim order), at most ``concurrency`` minus ``running`` rows of each action."""
    free = {key: concurrency - count for key, count in running.items()}
    kept = []
    for row in found:
        key = (row.destination, row.action)
        if free[key] > 0:
            kept.append(row)
            free[key] -= 1
    return kept


#: Takes the lock that serializes the concurrency-limited claims of one action until the commit.
LockAction = Callable[[AsyncConnection, str, str], Awaitable[None]]


async def no_lock(conn: AsyncConnection, destination: str, action: str) -> None:
    """The default :data:`LockAction`: the write transaction already excludes other writers (SQLite)."""


async def capped(
    conn: AsyncConnection, found: Sequence[Any], concurrency: int, lock_action: LockAction
) -> Sequence[Any]:
    """``found`` trimmed to the concurrency limit: the action's lock, its executing count, :func:`within`."""
    running = {}
    for destination, action in actions_of(found):
        await lock_action(conn, destination, action)
        running[destination, action] = (await conn.execute(executing(destination, action))).scalar_one()
    return within(found, running, concurrency)


@dataclass(slots=True)
class ClaimPlan:
    """What a claim writes for the rows it found: the claimed jobs (already moved to
    ``executing``), the ``job_state`` updates and the ``executing`` transitions."""

    jobs: list[Job]
    updates: list[Update]
    transitions: list[dict[str, Any]]


def plan(found: Sequence[Any], claim: Claim, now: datetime) -> ClaimPlan:
    """The writes that move the jobs of ``found`` (rows of :data:`JOB_COLUMNS`) to ``executing``."""
    claimed = [job_from_row(row) for row in found]
    expires = now + timedelta(seconds=claim.lease_seconds)
    seqs = [row.seq for row in found]
    updates = [
        update(job_state).where(job_state.c.job_seq.in_(chunk)).values(
            status=Status.EXECUTING.value, attempt=job_state.c.attempt + 1, due_at=None,
            ready_at=NO_DUE_TIME, lease_owner=claim.owner, lease_expires_at=expires,
        )
        for chunk in chunked(seqs)
    ]
    rows = []
    for seq, job in zip(seqs, claimed, strict=True):
        rows.append({
            "id": new_id(), "job_seq": seq, "job_id": job.id, "event_id": job.event_id,
            "attempt": job.attempt + 1,
            "state_before": job.status, "state_after": Status.EXECUTING, "error": None,
            "due_at": None, "created_at": now, "lease_owner": claim.owner, "lease_expires_at": expires,
        })
        job.status, job.attempt, job.due_at = Status.EXECUTING, job.attempt + 1, None
    return ClaimPlan(claimed, updates, rows)


async def claim(
    conn: AsyncConnection, query: Select[Any], claim: Claim, now: datetime, insert_rows: InsertRows,
    concurrency: int | None = None, lock_action: LockAction = no_lock,
) -> list[Job]:
    """Move the jobs ``query`` selects to ``executing`` under ``claim``'s lease (at most
    ``concurrency`` of an action executing, :func:`capped`); return them."""
    found: Sequence[Any] = (await conn.execute(query)).all()
    if concurrency is not None and found:
        found = await capped(conn, found, concurrency, lock_action)
    if not found:
        return []
    writes = plan(found, claim, now)
    for statement in writes.updates:
        await conn.execute(statement)
    await insert_rows(conn, transitions, writes.transitions)
    return writes.jobs


def recoverable(now: datetime, alive: Collection[str] | None) -> ColumnElement[bool]:
    """Executing jobs whose lease ran out, or (``alive`` given) whose claim owner is not alive.

    A job claimed without an owner (``lease_owner`` NULL) is recovered by its lease only.
    """
    expired = job_state.c.lease_expires_at <= now
    if alive is None:
        return and_(EXECUTING_SQL, expired)
    return and_(EXECUTING_SQL, or_(expired, job_state.c.lease_owner.not_in(sorted(alive))))


async def recover(
    conn: AsyncConnection, lock: Lock, now: datetime, insert_rows: InsertRows, alive: Collection[str] | None = None
) -> list[Job]:
    """Record ``failed`` for the :func:`recoverable` jobs (attempt unchanged, due at once); return them."""
    query = (
        select(*JOB_COLUMNS, job_state.c.lease_expires_at).select_from(JOBS_WITH_STATE)
        .where(recoverable(now, alive))
        .order_by(job_state.c.job_seq)
    )
    found = (await conn.execute(lock(query))).all()
    if not found:
        return []
    recovered = [job_from_row(row) for row in found]
    seqs = [row.seq for row in found]
    for chunk in chunked(seqs):
        await conn.execute(
            update(job_state).where(job_state.c.job_seq.in_(chunk)).values(
                status=Status.FAILED.value, due_at=None, ready_at=NO_DUE_TIME,
                lease_owner=None, lease_expires_at=None,
            )
        )
    rows = []
    for row, job in zip(found, recovered, strict=True):
        expired = row.lease_expires_at is not None and row.lease_expires_at <= now
        rows.append({
            "id": new_id(), "job_seq": row.seq, "job_id": job.id, "event_id": job.event_id, "attempt": job.attempt,
            "state_before": Status.EXECUTING, "state_after": Status.FAILED,
            "error": LEASE_EXPIRED if expired else OWNER_LAPSED, "due_at": None, "created_at": now,
            "lease_owner": None, "lease_expires_at": None,
        })
        job.status, job.due_at = Status.FAILED, None
    await insert_rows(conn, transitions, rows)
    return recovered


async def add_ordering_keys(conn: AsyncConnection) -> None:
    """Part of store schema 4 → 5: each job's ordering key (``NULL``: existing jobs are unordered) and
    the index claims check it through. Either may exist already (a database set back to 4)."""
    columns = await conn.run_sync(lambda sync: {c["name"] for c in inspect(sync).get_columns("jobs")})
    if "ordering_key" not in columns:
        await conn.execute(text(f"ALTER TABLE jobs ADD COLUMN ordering_key {NAME.compile(dialect=conn.dialect)}"))
    index = next(i for i in jobs.indexes if i.name == "ix_jobs_ordering")
    await conn.run_sync(lambda sync: index.create(sync, checkfirst=True))
