"""``SQLiteStore``: the embedded store on a SQLite file (WAL, group commit, one writer).

The SQLite hooks it shares with the wanderer are in :mod:`core.builtin.sqlite.dialect`.
``sqlite:///:memory:`` works too: one connection that reads and writes take in turn (an
in-memory database exists only inside its connection), for tests and throw-away runs; nothing
survives ``close``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.builtin.sqlite.dialect import SQLiteDialect
from core.builtin.sqlite.driver_sql import (
    CLAIMED_SQL,
    CURRENT_SQL,
    EVENTS_BY_ID_SQL,
    STATE_UPDATE_BY_SEQ_SQL,
    STATE_UPDATE_SQL,
    TRANSITION_INSERT_SQL,
    claim_params,
    claim_sql,
    claimed_jobs,
    events_from_rows,
    insert_params,
    sql_time,
    state_update_params,
)
from core.builtin.sqlite.writer_thread import Statement, WriterThread
from core.sqlstore import claims, idempotency, moves
from core.sqlstore.schema import NO_DUE_TIME, events, job_state, jobs, transitions
from core.sqlstore.store import SQLStore
from core.sqlstore.writer import SyncTask, Work, WriteSet, merged
from hookspecs import (
    Claim,
    Duplicate,
    Event,
    Job,
    Page,
    RefusedTransition,
    Status,
    StoreUnavailable,
    Transition,
    WhereEvent,
    check_transitions,
)


class SQLiteStore(SQLiteDialect, SQLStore):
    """The store on a SQLite file: ``sqlite:////abs/path.db`` (the host makes paths absolute).

    :param busy_timeout_ms: see :class:`~core.builtin.sqlite.dialect.SQLiteDialect`.

    Other options: see :class:`~core.sqlstore.SQLStore`.
    """

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        #: Runs batches of row inserts and claims (a file database only).
        self._writer_thread: WriterThread | None = None

    def create_engine(self) -> AsyncEngine:
        if self.path is not None:
            self._writer_thread = WriterThread(self.path, self.busy_timeout_ms)
        return super().create_engine()

    async def open(self) -> None:
        try:
            await super().open()
        except BaseException:
            await self._close_writer_thread()
            raise

    async def close(self) -> None:
        await super().close()
        await self._close_writer_thread()

    async def _close_writer_thread(self) -> None:
        writer_thread, self._writer_thread = self._writer_thread, None
        if writer_thread is not None:
            await writer_thread.close()

    async def insert_rows(self, conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
        """One executemany of plain tuples: SQLAlchemy's per-value type processing would be
        the largest cost of a batch, so values are converted here in one pass."""
        await conn.exec_driver_sql(*insert_params(table, rows))

    async def update_states(self, conn: AsyncConnection, updates: list[dict[str, Any]]) -> int:
        result = await conn.exec_driver_sql(STATE_UPDATE_SQL, state_update_params(updates))
        return result.rowcount

    async def _transaction(self, batch: list[Work]) -> list[Any]:
        """A batch of row inserts and claims runs in ONE call to the writer thread
        (:mod:`~core.builtin.sqlite.writer_thread`): idempotency keys claimed first, then the
        inserts, then its guarded transitions (:func:`_move`); a batch with other tasks
        (recovery, purge) takes the shared async path. The two never overlap: the group writer
        runs one batch at a time."""
        if self._writer_thread is None or not all(isinstance(work, WriteSet | SyncTask) for work in batch):
            return await super()._transaction(batch)
        rows = merged(batch)
        prebuilt = _statements(rows)  # in this thread: the writer thread holds the GIL less
        keys = idempotency.sqlite_params(rows) if rows.keys else []
        found: dict[str, Duplicate] = {}

        def statements(conn: Connection) -> list[Statement]:
            if keys:
                found.update(idempotency.claim(conn, batch, rows, keys))
                if found:  # events were dropped from the rows
                    return _statements(rows)
            return prebuilt

        guard = SyncTask(lambda conn: _move(conn, rows.moves))
        try:
            refused, *results = await self._writer_thread.run(statements, [guard, *batch])
        except Exception as exc:
            if self.is_unavailable(exc):
                raise StoreUnavailable(f"the store {self.shown_url} is unavailable: {exc}") from exc
            raise
        return [result if isinstance(work, WriteSet) else outcome
                for work, result, outcome in zip(batch, moves.results(batch, refused, found), results,
                                                                strict=True)]

    async def claim(
        self, claim: Claim, *, destination: str, action: str, limit: int, now: datetime,
        concurrency: int | None = None,
    ) -> list[Job]:
        """The base's claim (due time first, then oldest), in driver SQL on the writer thread
        (:func:`_claim_due`): the claim of every batch a scheduler delivers."""
        if self._writer_thread is None or limit <= 0:
            return await super().claim(claim, destination=destination, action=action, limit=limit, now=now,
                                       concurrency=concurrency)
        result: list[Job] = await self._writer.submit(SyncTask(
            lambda conn: _claim_due(conn, claim, destination, action, limit, now, concurrency)))
        return result

    async def find_events(self, where: WhereEvent) -> list[Event]:
        """The base's read; events by id alone (what the scheduler reads for every batch it
        loads) in driver SQL with plain tuples (:data:`~core.builtin.sqlite.driver_sql.EVENTS_BY_ID_SQL`)."""
        by_id = WhereEvent(ids=where.ids, page=Page(limit=where.page.limit))
        if not where.ids or len(where.ids) > claims.IN_CHUNK or where.page.limit <= 0 or where != by_id:
            return await super().find_events(where)
        async with self.connection() as conn:
            result = await conn.exec_driver_sql(EVENTS_BY_ID_SQL.format(", ".join("?" * len(where.ids))),
                                                (*where.ids, where.page.limit))
            return events_from_rows(result.all())

    def claim_work(self, queries: list[Select[Any]], claim: Claim, now: datetime,
                   concurrency: int | None = None) -> Work:
        """A claim as a :class:`SyncTask`, so that it shares the writer thread's one hop (the
        write transaction is the only writer: a concurrency limit counts without a lock)."""

        def run(conn: Connection) -> list[Job]:
            claimed: list[Job] = []
            for query in queries:
                found: Sequence[Any] = conn.execute(query).all()
                if found and concurrency is not None:
                    running = {key: conn.execute(claims.executing(*key)).scalar_one()
                               for key in claims.actions_of(found)}
                    found = claims.within(found, running, concurrency)
                if found:
                    writes = claims.plan(found, claim, now)
                    for statement in writes.updates:
                        conn.execute(statement)
                    conn.exec_driver_sql(*insert_params(transitions, writes.transitions))
                    claimed += writes.jobs
            return claimed

        return SyncTask(run)


def _claim_due(conn: Connection, claim: Claim, destination: str, action: str, limit: int, now: datetime,
               concurrency: int | None) -> list[Job]:
    """:func:`core.sqlstore.claims.claim` of the due jobs of one action on the writer thread's
    connection, in driver SQL with plain tuples (:func:`~core.builtin.sqlite.driver_sql.claim_sql`):
    the same ``SELECT``, ``UPDATE`` and ``INSERT`` (the write transaction is the only writer: a
    concurrency limit counts without a lock)."""
    found: Sequence[Any] = conn.exec_driver_sql(claim_sql().sql, claim_params(destination, action, limit, now)).all()
    if found and concurrency is not None:
        running = {key: conn.execute(claims.executing(*key)).scalar_one() for key in claims.actions_of(found)}
        found = claims.within(found, running, concurrency)
    if not found:
        return []
    expires = now + timedelta(seconds=claim.lease_seconds)
    lease = (sql_time(NO_DUE_TIME), claim.owner, sql_time(expires))
    for chunk in claims.chunked([row[0] for row in found]):
        conn.exec_driver_sql(CLAIMED_SQL.format(", ".join("?" * len(chunk))), (*lease, *chunk))
    claimed, (sql, rows) = claimed_jobs(found, claim.owner, now, expires)
    conn.exec_driver_sql(sql, rows)
    return claimed


def _statements(rows: WriteSet) -> list[Statement]:
    """The inserts of a batch's rows, table by table."""
    return [insert_params(table, values) for table, values in (
        (events, rows.events), (jobs, rows.jobs), (transitions, rows.transitions), (job_state, rows.states),
    ) if values]


def _move(conn: Connection, moved: list[Transition]) -> list[RefusedTransition]:
    """:func:`core.sqlstore.moves.apply` on the writer thread's connection, in driver SQL.

    The guard's read also gives each job's ``seq``, so the accepted transitions and state
    updates name their job by it, without looking its id up again."""
    if not moved:
        return []
    current: dict[str, tuple[Status, int]] = {}
    seqs: dict[str, int] = {}
    for chunk in claims.chunked(moves.moved_ids(moved)):
        for job_id, status, attempt, seq in conn.exec_driver_sql(
                CURRENT_SQL.format(", ".join("?" * len(chunk))), tuple(chunk)):
            current[job_id], seqs[job_id] = (Status(status), attempt), seq
    accepted, refused = check_transitions(moved, current)
    if accepted:
        conn.exec_driver_sql(TRANSITION_INSERT_SQL, [
            (t.id, seqs[t.job_id], t.job_id, t.event_id, t.attempt, t.state_before, t.state_after, t.error,
             sql_time(t.due_at), sql_time(t.created_at), None, None)
            for t in accepted
        ])
        latest = {t.job_id: t for t in accepted}.values()
        conn.exec_driver_sql(STATE_UPDATE_BY_SEQ_SQL, [
            (t.state_after, t.attempt, sql_time(t.due_at), sql_time(t.due_at or NO_DUE_TIME), seqs[t.job_id])
            for t in latest
        ])
    return refused
