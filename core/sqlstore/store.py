"""``SQLStore``: the :class:`~hookspecs.Store` protocol on SQLAlchemy Core's async engine.

Dialect subclasses (:class:`~core.builtin.sqlite.store.SQLiteStore`, the PostgreSQL plugin's store)
override the small hooks listed in :mod:`core.sqlstore`; everything else is shared.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import Select, Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import ConfigError
from core.sqlstore import activity as dashboard
from core.sqlstore import buckets, claims, flows, idempotency, moves, pauses, reads, upkeep
from core.sqlstore.database import SQLDatabase
from core.sqlstore.rows import UPDATE_PREFIX, event_row, new_jobs
from core.sqlstore.schema import INSERTS, SCHEMA_VERSION, events, job_state, jobs, metadata, transitions
from core.sqlstore.versioning import Step
from core.sqlstore.writer import GroupWriter, SyncTask, Work, WriterStats, WriteSet, merged
from core.timing import RateLimit
from hookspecs import (
    FINAL_STATUSES,
    Claim,
    DisabledFlow,
    Duplicate,
    Event,
    Job,
    Pause,
    Queue,
    RefusedTransition,
    Status,
    Transition,
    WhereEvent,
    WhereJob,
)

_STATE_UPDATE = (
    update(job_state)
    .where(job_state.c.job_seq == select(jobs.c.seq).where(jobs.c.id == bindparam(f"{UPDATE_PREFIX}job_ref"))
           .scalar_subquery())
    .values({
        name: bindparam(f"{UPDATE_PREFIX}{name}") for name in ("status", "attempt", "due_at", "ready_at")
    } | {"lease_owner": None, "lease_expires_at": None})
)


async def _add_version_5(conn: AsyncConnection) -> None:
    """Store schema 4 -> 5: the rate limits' token buckets and the jobs' ordering keys."""
    await buckets.add_rate_buckets(conn)
    await claims.add_ordering_keys(conn)


async def _add_version_6(conn: AsyncConnection) -> None:
    """Store schema 5 -> 6: the indexes of the dashboard's reads (:mod:`core.sqlstore.activity`)."""
    await dashboard.add_dashboard_indexes(conn)


class SQLStore(SQLDatabase):
    """The shared SQL store. See :mod:`core.sqlstore` for its extension points.

    :param url: a SQLAlchemy URL (see :class:`~core.sqlstore.database.SQLDatabase`).
    :param commit_delay_ms: how long the writer waits for more writes to share a commit.
    :param max_batch: rows above which the writer closes a shared transaction.
    :param purge_batch: events deleted per transaction by :meth:`purge`.
    """

    component: ClassVar[str] = "store"
    tables: ClassVar[Sequence[Table]] = tuple(metadata.sorted_tables)
    schema_version: ClassVar[int] = SCHEMA_VERSION
    schema_steps: ClassVar[Mapping[int, Step]] = {
        1: idempotency.add_keys, 2: pauses.add_pauses, 3: flows.add_disabled_flows,
        4: _add_version_5, 5: _add_version_6,
    }
    #: Writer transactions in flight at once (SQLite: 1, its single writer; a server database
    #: may overlap a commit's disk wait with the next batch).
    writer_concurrency: ClassVar[int] = 1
    #: Whether a time filter also bounds the id (the database sorts KSUIDs by time; set by
    #: :meth:`open`, see :mod:`core.sqlstore.reads`).
    id_bounds: bool = False

    def __init__(self, url: str, *, commit_delay_ms: float = 2.0, max_batch: int = 5000,
                 purge_batch: int = 1000, **options: Any) -> None:
        super().__init__(url, **options)
        if commit_delay_ms < 0 or max_batch < 1 or purge_batch < 1:
            raise ConfigError(
                "options of the store", "commit_delay_ms/max_batch/purge_batch",
                (commit_delay_ms, max_batch, purge_batch), "commit_delay_ms >= 0, max_batch >= 1, purge_batch >= 1",
            )
        self.purge_batch = purge_batch
        self._writer = GroupWriter(self._transaction, delay=commit_delay_ms / 1000, max_weight=max_batch,
                                   concurrency=self.writer_concurrency)

    # -- extension points (and those of SQLDatabase) ----------------------------------------

    def option_names(self) -> list[str]:
        return [*super().option_names(), "commit_delay_ms", "max_batch", "purge_batch"]

    def lock_claimed(self, query: Select[Any]) -> Select[Any]:
        """Make a claim's ``SELECT`` lock its rows (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)."""
        return query

    def lock_moved(self, query: Select[Any]) -> Select[Any]:
        """Make the ``SELECT`` of the current status of jobs that transitions move lock their
        rows until the commit (PostgreSQL: ``FOR UPDATE``; SQLite's write transaction already
        excludes every other writer)."""
        return query

    async def current_states(self, conn: AsyncConnection, job_ids: Sequence[str]) -> dict[str, tuple[Status, int]]:
        """The current status and attempt of the jobs a batch's transitions move, read by
        :func:`~core.sqlstore.moves.current_of` locked by :meth:`lock_moved` (the guard of
        :mod:`core.sqlstore.moves`); a dialect may run the same query on its driver."""
        return await moves.read_current(conn, job_ids, self.lock_moved)

    async def insert_rows(self, conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert many rows in one statement (executemany); a dialect may use COPY instead.

        Rows of ``transitions`` and ``job_state`` name their job either by ``job_seq`` (claims
        know it) or by id as ``job_ref``, which the statement resolves to ``job_seq``
        (:data:`~core.sqlstore.schema.INSERTS`). All rows of one call name it the same way.
        """
        await conn.execute(INSERTS[table.name] if "job_ref" in rows[0] else insert(table), rows)

    async def update_states(self, conn: AsyncConnection, updates: list[dict[str, Any]]) -> int:
        """Make accepted transitions their jobs' current state (one executemany); return rows
        changed, or -1 where the driver cannot count the rows of an executemany."""
        result = await conn.execute(_STATE_UPDATE, updates)
        return result.rowcount if conn.dialect.supports_sane_multi_rowcount else -1

    async def lock_action(self, conn: AsyncConnection, destination: str, action: str) -> None:
        """Serialize, until the commit, the claims of one action that count its executing jobs
        (a concurrency limit). Default: nothing, the write transaction already excludes every
        other writer (SQLite); PostgreSQL takes a transaction advisory lock."""

    def claim_work(self, queries: list[Select[Any]], claim: Claim, now: datetime,
                   concurrency: int | None = None) -> Work:
        """The writer's work that claims what each of ``queries`` selects, in order, and
        returns the claimed jobs, at most ``concurrency`` of an action executing (default: a
        task on the async connection)."""

        async def run(conn: AsyncConnection) -> list[Job]:
            claimed: list[Job] = []
            for query in queries:
                claimed += await claims.claim(conn, query, claim, now, self.insert_rows, concurrency, self.lock_action)
            return claimed

        return run

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def stats(self) -> WriterStats:
        """What the group-commit writer did (transactions, calls, retried batches)."""
        return self._writer.stats

    async def open(self) -> None:
        await super().open()
        async with self.connection() as conn:
            self.id_bounds = await reads.ids_sort_as_bytes(conn)
        self._writer.start()

    async def close(self) -> None:
        await self._writer.stop()
        await super().close()

    # -- the writer's transaction -----------------------------------------------------------

    async def _transaction(self, batch: list[Work]) -> list[Any]:
        async with self.writing() as conn:
            rows = merged(batch)
            duplicates = await idempotency.claim_async(conn, batch, rows) if rows.keys else {}
            refused = await self._apply(conn, rows)
            results = [
                result if isinstance(work, WriteSet)
                else await conn.run_sync(work.run) if isinstance(work, SyncTask) else await work(conn)
                for work, result in zip(batch, moves.results(batch, refused, duplicates), strict=True)
            ]
            await conn.commit()
        return results

    async def _apply(self, conn: AsyncConnection, rows: WriteSet) -> list[RefusedTransition]:
        """Insert the rows, then the legal moves (:mod:`core.sqlstore.moves`); return the refused."""
        for table, values in ((events, rows.events), (jobs, rows.jobs), (transitions, rows.transitions),
                              (job_state, rows.states)):
            if values:
                await self.insert_rows(conn, table, values)
        if not rows.moves:
            return []
        return await moves.apply(conn, rows.moves, self.current_states, self.insert_rows, self.update_states)

    # -- writes -----------------------------------------------------------------------------

    async def insert_queue(self, queue: Queue) -> list[Duplicate]:
        """Store events, their jobs and each job's first transition in one transaction.

        Each job's first transition records the job's own ``status`` (the gateway sets
        ``acknowledged``), its ``attempt`` and ``due_at``, with no state before. An event
        without ``ingested_at`` gets the time of the call. Concurrent calls share commits.
        Events whose idempotency key is taken are not stored but returned
        (:mod:`core.sqlstore.idempotency`).
        """
        now = datetime.now(UTC)
        rows = WriteSet()
        for event in queue.events:
            for job in event.jobs:
                if job.event_id != event.id:
                    raise ValueError(f"job {job.id} names event {job.event_id} but is queued under {event.id}")
            rows.events.append(event_row(event, now))
            key = idempotency.key_row(event, now)
            if key is not None:
                rows.keys.append(key)
            new_jobs(event.jobs, rows)
        if not rows.weight:
            return []
        duplicates: list[Duplicate] = await self._writer.submit(rows)
        return duplicates

    async def add_jobs(self, jobs: Sequence[Job]) -> None:
        """Store follow-up jobs of stored events, each with a first transition as in insert_queue."""
        rows = WriteSet()
        new_jobs(jobs, rows)
        if rows.weight:
            await self._writer.submit(rows)

    async def add_transitions(self, transitions: Sequence[Transition]) -> list[RefusedTransition]:
        """Append the legal transitions; each becomes its job's state (status, attempt, due_at;
        lease cleared). Return the refused ones (see :mod:`core.sqlstore.moves`)."""
        if not transitions:
            return []
        refused: list[RefusedTransition] = await self._writer.submit(WriteSet(moves=list(transitions)))
        return refused

    async def claim(
        self, claim: Claim, *, destination: str, action: str, limit: int, now: datetime,
        concurrency: int | None = None,
    ) -> list[Job]:
        """Move up to ``limit`` due jobs of an action to ``executing`` (due time first, then oldest),
        leaving at most ``concurrency`` of its jobs executing."""
        if limit <= 0:
            return []
        query = self.lock_claimed(claims.due_for(destination, action, limit, now))
        result: list[Job] = await self._writer.submit(self.claim_work([query], claim, now, concurrency))
        return result

    async def claim_ids(
        self, claim: Claim, job_ids: Sequence[str], *, now: datetime, concurrency: int | None = None
    ) -> list[Job]:
        """Claim the named jobs that are claimable and due (at most ``concurrency`` of an action
        executing); skip the others."""
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return []
        queries = [self.lock_claimed(claims.named(chunk, now)) for chunk in claims.chunked(ids)]
        result: list[Job] = await self._writer.submit(self.claim_work(queries, claim, now, concurrency))
        return result

    async def recover(self, *, now: datetime, alive: Collection[str] | None = None) -> list[Job]:
        """Record ``failed`` for executing jobs whose lease expired or (``alive`` given) whose
        claiming node is not alive; return them."""
        result: list[Job] = await self._writer.submit(
            lambda conn: claims.recover(conn, self.lock_claimed, now, self.insert_rows, alive)
        )
        return result

    async def purge(self, *, before: datetime, where: WhereJob | None = None) -> int:
        """Delete events received before ``before`` whose jobs are all final (with ``where``:
        events with jobs, all matching it); return how many.

        Works one chunk of ``purge_batch`` events per transaction, so writes go on meanwhile;
        first removes the idempotency keys whose window has ended.
        """
        total = 0
        await self._writer.submit(lambda conn: idempotency.expire(conn, datetime.now(UTC)))
        while True:
            count: int = await self._writer.submit(
                lambda conn: upkeep.purge_chunk(conn, before, self.purge_batch, where)
            )
            total += count
            if count < self.purge_batch:
                return total

    async def pause(self, pause: Pause) -> bool:
        """Pause an action (``action`` ``"*"``: the destination); ``False`` if it was paused."""
        done: bool = await self._writer.submit(lambda conn: pauses.write_pause(conn, pause))
        return done

    async def resume(self, destination: str, action: str) -> bool:
        """Resume an action paused with :meth:`pause`; ``False`` if it was not paused."""
        done: bool = await self._writer.submit(lambda conn: pauses.remove_pause(conn, destination, action))
        return done

    async def pauses(self) -> list[Pause]:
        """Every paused action."""
        async with self.connection() as conn:
            return await pauses.read_pauses(conn)

    async def disable_flow(self, disabled: DisabledFlow) -> bool:
        """Disable a flow: gateways make none of its jobs; ``False`` if it was disabled."""
        done: bool = await self._writer.submit(lambda conn: flows.write_disabled(conn, disabled))
        return done

    async def enable_flow(self, flow: str) -> bool:
        """Enable a flow disabled with :meth:`disable_flow`; ``False`` if it was not disabled."""
        done: bool = await self._writer.submit(lambda conn: flows.remove_disabled(conn, flow))
        return done

    async def disabled_flows(self) -> list[DisabledFlow]:
        """Every disabled flow."""
        async with self.connection() as conn:
            return await flows.read_disabled(conn)

    async def take_tokens(self, key: str, wanted: int, *, rate: float, burst: int, now: datetime) -> int:
        """Take up to ``wanted`` tokens from the bucket ``key`` (``rate`` a second, at most
        ``burst``; a new bucket is full), shared by every process of the database; return how
        many were granted. A negative ``wanted`` gives unused tokens back."""
        limit = RateLimit(rate, burst)
        granted: int = await self._writer.submit(lambda conn: buckets.take(conn, key, wanted, limit, now))
        return granted

    async def rebuild_state(self) -> int:
        """Recompute the ``job_state`` summary from the history; return the number of jobs."""
        count: int = await self._writer.submit(upkeep.rebuild_state)
        return count

    # -- reads ------------------------------------------------------------------------------

    async def backlog(self) -> dict[tuple[str, str, str], int]:
        """Unfinished jobs by ``(destination, action, status)``, counted in the ``job_state``
        summary (its status index: the cost grows with the backlog, not the history)."""
        unfinished = [status.value for status in Status if status not in FINAL_STATUSES]
        query = (
            select(job_state.c.destination, job_state.c.action, job_state.c.status, func.count())
            .where(job_state.c.status.in_(unfinished))
            .group_by(job_state.c.destination, job_state.c.action, job_state.c.status)
        )
        async with self.connection() as conn:
            rows = (await conn.execute(query)).all()
        return {(destination, action, status): count for destination, action, status, count in rows}

    async def activity(self, since: datetime, bucket_seconds: int) -> list[tuple[str, str, str, int, int]]:
        """Transitions since ``since`` by action, status reached and time bucket (the dashboard)."""
        async with self.connection() as conn:
            return await dashboard.activity(conn, since, bucket_seconds)

    async def action_summary(self, destination: str, action: str) -> dashboard.ActionSummary:
        """An action's failed and discarded counts and its oldest waiting job (the dashboard)."""
        async with self.connection() as conn:
            return await dashboard.action_summary(conn, destination, action)

    async def failures(self, destination: str, action: str) -> list[dashboard.Failure]:
        """An action's recent failures grouped by error message (the dashboard)."""
        async with self.connection() as conn:
            return await dashboard.failures(conn, destination, action)

    async def find_events(self, where: WhereEvent) -> list[Event]:
        async with self.connection() as conn:
            return await reads.find_events(conn, where, self.id_bounds)

    async def find_jobs(self, where: WhereJob) -> list[Job]:
        async with self.connection() as conn:
            return await reads.find_jobs(conn, where, self.id_bounds)

    async def get_event(self, event_id: str) -> Event | None:
        async with self.connection() as conn:
            return await reads.get_event(conn, event_id)

    async def get_job(self, job_id: str) -> Job | None:
        async with self.connection() as conn:
            return await reads.get_job(conn, job_id)
