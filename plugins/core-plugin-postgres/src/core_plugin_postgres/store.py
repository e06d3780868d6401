"""``PostgresStore``: the shared SQL store (:class:`core.sqlstore.SQLStore`) on PostgreSQL.

What differs from SQLite, all through the base's extension points:

- Claims lock the ``job_state`` rows they select with ``FOR UPDATE OF job_state SKIP
  LOCKED``: several schedulers claim concurrently and never receive one job twice. The guard
  of ``add_transitions`` reads its jobs' status ``FOR UPDATE OF job_state`` (waiting), so two
  writers never both move a job from one status.
- Claims under a concurrency limit take a transaction advisory lock per action
  (:meth:`PostgresStore.lock_action`) before counting the action's executing jobs.
- Each table's rows of a shared commit go in with one statement: ``COPY`` (asyncpg's binary
  ``copy_records_to_table``) from ``copy_threshold`` rows, else ``INSERT … SELECT FROM
  unnest(arrays)``, which also resolves a job's ``job_seq`` from its id by a join. Below the
  threshold, the events, jobs, first transitions and summaries of a commit go in with ONE
  statement (data-modifying ``WITH``, the jobs' ``RETURNING seq, id`` giving the others their
  ``job_seq``): one round trip instead of four, which is what a commit of a few single-event
  requests waits for.
- ``job_state``, the narrow summary updated in place at every transition, gets a
  ``fillfactor`` (room for the updated row version on its own page) and eager autovacuum,
  since dead rows pile up fast at thousands of jobs per second; the history tables are
  append-only and purged by event, oldest first.
- Commits that store events or jobs wait for the WAL flush (``synchronous_commit = on``):
  a ``202`` is durable. Commits that only record claims and transitions do not wait
  (``off``, unless ``durable_transitions``): a server crash may forget the last ~0.2 s of
  them, and those jobs then run again (at least once), while a commit costs no fsync.
- A dropped connection, a terminated backend or a server restart raises
  :class:`~hookspecs.StoreUnavailable` for the call in flight (nothing of it committed);
  the pool is invalidated and the next call reconnects.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson
from core.sqlstore import (
    NO_DUE_TIME,
    UPDATE_PREFIX,
    Compiled,
    CompiledClaim,
    SQLStore,
    WriteSet,
    compiled_current,
    compiled_due,
    compiled_events_by_id,
    events,
    job_state,
    jobs,
    transitions,
)
from hookspecs import (
    Claim,
    ConfigError,
    Event,
    Job,
    Page,
    RefusedTransition,
    Status,
    WhereEvent,
    new_id,
    redacted_url,
)
from sqlalchemy import Column, Select, Table, text
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from core_plugin_postgres._pg import DISCONNECTED, schema_locked, sqlalchemy_url
from core_plugin_postgres._retention import purge_loop

#: SQLSTATE classes meaning "the server is not usable now": connection exception, operator
#: intervention (shutdown, terminated backend), insufficient resources.
_UNAVAILABLE_SQLSTATES = ("08", "57", "53")

#: Storage settings of the in-place-updated summary table (applied when they differ).
JOB_STATE_SETTINGS = {
    "fillfactor": "70",
    "autovacuum_vacuum_scale_factor": "0.02",
    "autovacuum_vacuum_insert_scale_factor": "0.05",
    "autovacuum_analyze_scale_factor": "0.02",
    "autovacuum_vacuum_cost_delay": "0",
}


#: Tables whose new rows make a commit wait for the WAL flush: what the gateway acknowledged.
DURABLE_TABLES = frozenset({"events", "jobs"})


class PostgresStore(SQLStore):
    """The store on PostgreSQL: ``postgresql://user@host:5432/database``.

    :param pool_size: connections kept open (the writer uses one; readers the rest).
    :param max_overflow: extra connections allowed under load.
    :param copy_threshold: rows of one table in one commit from which ``COPY`` is used.
    :param durable_transitions: make claims and transitions wait for the WAL flush too.
    :param retention: seconds of finished history to keep; older events whose jobs are all
        final are purged every ``purge_interval`` seconds by one node. ``None``: never.
    Other options: see :class:`~core.sqlstore.SQLStore` (``commit_delay_ms``, ``max_batch``,
    ``purge_batch``).
    """

    #: Two writer transactions in flight: a batch forms and runs while the previous commit
    #: waits for the WAL flush (claims lock rows, so concurrent transactions stay correct).
    writer_concurrency = 2

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        max_overflow: int = 5,
        copy_threshold: int = 200,
        durable_transitions: bool = False,
        retention: float | None = None,
        purge_interval: float = 3600.0,
        **options: Any,
    ) -> None:
        if (pool_size < 1 or max_overflow < 0 or copy_threshold < 1 or purge_interval <= 0
                or (retention is not None and retention <= 0)):
            raise ConfigError(
                "options of the store", "pool_size/max_overflow/copy_threshold/retention/purge_interval",
                (pool_size, max_overflow, copy_threshold, retention, purge_interval),
                "pool_size >= 1, max_overflow >= 0, copy_threshold >= 1, retention > 0 (seconds) "
                "or unset, purge_interval > 0 (seconds)",
            )
        super().__init__(url, **options)
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.copy_threshold = copy_threshold
        self.durable_transitions = bool(durable_transitions)
        self.retention = retention
        self.purge_interval = purge_interval
        self._purging: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({redacted_url(self.url)!r})"

    def option_names(self) -> list[str]:
        return [*super().option_names(), "pool_size", "max_overflow", "copy_threshold", "durable_transitions",
                "retention", "purge_interval"]

    def create_engine(self) -> AsyncEngine:
        return create_async_engine(
            sqlalchemy_url(self.url), pool_size=self.pool_size, max_overflow=self.max_overflow,
            pool_recycle=3600,
        )

    async def begin_write(self, conn: AsyncConnection) -> None:
        """Begin, and say whether the commit waits for the WAL flush.

        The statement also makes the driver's lazy ``BEGIN`` happen now, so that the rows this
        class writes through asyncpg directly are inside the transaction.
        """
        await conn.begin()
        await conn.execute(text(f"SET LOCAL synchronous_commit = {'on' if self.durable_transitions else 'off'}"))

    def lock_claimed(self, query: Select[Any]) -> Select[Any]:
        return query.with_for_update(skip_locked=True, of=job_state)

    async def lock_action(self, conn: AsyncConnection, destination: str, action: str) -> None:
        """A transaction advisory lock per action: concurrency-limited claims of one action, in
        any process, count its executing jobs one after the other (each sees the previous commit)."""
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                           {"key": f"core.concurrency:{destination}/{action}"})

    def lock_moved(self, query: Select[Any]) -> Select[Any]:
        """Lock the rows of moved jobs (waiting for a concurrent writer, in ``job_seq`` order)."""
        return query.with_for_update(of=job_state)

    @functools.cached_property
    def _current_sql(self) -> Compiled:
        """The guard's read (:func:`~core.sqlstore.compiled_current`, locked by :meth:`lock_moved`), compiled once."""
        return compiled_current(_DIALECT, self.lock_moved)

    async def current_states(self, conn: AsyncConnection, job_ids: Sequence[str]) -> dict[str, tuple[Status, int]]:
        """The base's guarded read of the moved jobs on asyncpg with plain records, every id in
        one array (:attr:`_current_sql`): the read of every batch of results a scheduler records."""
        driver = await _driver(conn)
        query = self._current_sql
        try:
            found = await driver.fetch(query.sql, *query.bind({"job_ids": list(job_ids)}))
        except BaseException as exc:
            await self._after_driver_error(conn, exc)
            raise
        return {job_id: (Status(status), attempt) for job_id, status, attempt in found}

    async def find_events(self, where: WhereEvent) -> list[Event]:
        """The base's read; events by id alone (what the scheduler reads for every batch it
        loads) on asyncpg with plain records (:func:`~core.sqlstore.compiled_events_by_id`)."""
        by_id = WhereEvent(ids=where.ids, page=Page(limit=where.page.limit))
        if not where.ids or where.page.limit <= 0 or where != by_id:
            return await super().find_events(where)
        query = _events_by_id_sql()
        async with self.connection() as conn:
            driver: Any = (await conn.get_raw_connection()).driver_connection
            try:
                found = await driver.fetch(query.sql, *query.bind({"ids": list(where.ids), "limit": where.page.limit}))
            except BaseException as exc:
                await self._after_driver_error(conn, exc)
                raise
        loads = orjson.loads
        return [
            Event(id=event_id, source=source, name=name, context=loads(context), data=loads(data),
                  received_at=received, sent_at=sent, ingested_at=ingested)
            for event_id, source, name, context, data, received, sent, ingested in found
        ]

    async def claim(
        self, claim: Claim, *, destination: str, action: str, limit: int, now: datetime,
        concurrency: int | None = None,
    ) -> list[Job]:
        """The base's claim (due time first, then oldest) on asyncpg with plain records
        (:meth:`_claim_due`): the claim of every batch a scheduler delivers. A claim under a
        concurrency limit takes the base's path (its advisory lock and count)."""
        if concurrency is not None or limit <= 0:
            return await super().claim(claim, destination=destination, action=action, limit=limit, now=now,
                                       concurrency=concurrency)
        claimed: list[Job] = await self._writer.submit(
            lambda conn: self._claim_due(conn, claim, destination, action, limit, now))
        return claimed

    async def _claim_due(self, conn: AsyncConnection, claim: Claim, destination: str, action: str, limit: int,
                         now: datetime) -> list[Job]:
        """The base's ``SELECT`` (:func:`~core.sqlstore.compiled_due`), one ``UPDATE`` of the found
        rows and the ``executing`` transitions (:meth:`insert_rows`), in the writer's transaction."""
        driver = await _driver(conn)
        expires = now + timedelta(seconds=claim.lease_seconds)
        query = _claim_sql()
        try:
            found = await driver.fetch(query.sql, *query.params(destination, action, limit, now))
            if found:
                await driver.execute(_CLAIMED, [row[0] for row in found], NO_DUE_TIME, claim.owner, expires)
        except BaseException as exc:
            await self._after_driver_error(conn, exc)
            raise
        if not found:
            return []
        loads, executing = orjson.loads, Status.EXECUTING
        claimed, rows = [], []
        for (seq, job_id, event_id, destination_name, action_name, context, data, version, parent, created, key,
             ordering, status, attempt, _due) in found:
            claimed.append(Job(
                id=job_id, destination=destination_name, action=action_name, event_id=event_id,
                context=loads(context), data=loads(data), created_at=created, version=version, parent_job_id=parent,
                idempotency_key=key, ordering_key=ordering, status=executing, attempt=attempt + 1, due_at=None,
            ))
            rows.append({
                "id": new_id(), "job_seq": seq, "job_id": job_id, "event_id": event_id, "attempt": attempt + 1,
                "state_before": Status(status), "state_after": executing, "error": None, "due_at": None,
                "created_at": now, "lease_owner": claim.owner, "lease_expires_at": expires,
            })
        await self.insert_rows(conn, transitions, rows)
        return claimed

    async def open(self) -> None:
        """Create or upgrade the tables under the schema lock (nodes may start together)."""
        async with schema_locked(self.url, "the store"):
            await super().open()
            async with self.writing() as conn:
                await _tune(conn, job_state.name, JOB_STATE_SETTINGS)
                await conn.commit()
        if self.retention is not None:
            self._purging = asyncio.create_task(purge_loop(
                self.url, lambda before: self.purge(before=before),
                keep=self.retention, interval=self.purge_interval,
            ), name="core-store-purge")

    async def close(self) -> None:
        if self._purging is not None:
            self._purging.cancel()
            await asyncio.gather(self._purging, return_exceptions=True)
            self._purging = None
        await super().close()

    async def insert_rows(self, conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
        """One statement per table and commit: ``COPY`` for large batches of plain rows, else
        ``INSERT … SELECT FROM unnest(arrays)`` (rows naming their job by ``job_ref`` get its
        ``job_seq`` by a join in the same statement)."""
        try:
            await self._insert(conn, table, rows)
        except BaseException as exc:
            await self._after_driver_error(conn, exc)
            raise

    async def _after_driver_error(self, conn: AsyncConnection, exc: BaseException) -> None:
        """The driver was used directly, so SQLAlchemy did not see the error. Unless the server
        simply refused the rows (the transaction rolls back cleanly), the connection may be
        mid-protocol: drop it, and after a disconnect the pooled ones too (the server likely
        closed them all)."""
        if isinstance(exc, asyncpg.PostgresError) and not self.is_unavailable(exc):
            return
        await conn.invalidate()
        if self.is_unavailable(exc) and self.engine is not None:
            await self.engine.dispose()

    async def _insert(self, conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
        driver = await _driver(conn)
        if table.name in DURABLE_TABLES:
            await self._durable(conn, driver)
        columns = tuple(rows[0])
        values = _arrays(table, columns, rows, conn.dialect)
        if len(rows) >= self.copy_threshold and all(name in table.c for name in columns):
            await driver.copy_records_to_table(table.name, records=list(zip(*values, strict=True)),
                                               columns=list(columns))
            return
        await driver.execute(_unnest_insert(table, columns, conn.dialect), *values)

    async def _apply(self, conn: AsyncConnection, rows: WriteSet) -> list[RefusedTransition]:
        """The commit's new rows in one statement when every table's are few (see the module
        docstring), then the moves as the base applies them."""
        tables = [(table, values) for table, values in (
            (events, rows.events), (jobs, rows.jobs), (transitions, rows.transitions), (job_state, rows.states),
        ) if values]
        if (len(tables) < 2 or not rows.jobs or any(len(values) >= self.copy_threshold for _, values in tables)
                or any("job_ref" not in values[0] for table, values in tables if table in (transitions, job_state))):
            return await super()._apply(conn, rows)
        try:
            driver = await _driver(conn)
            await self._durable(conn, driver)
            sql, args = _insert_together(tables, conn.dialect)
            await driver.execute(sql, *args)
        except BaseException as exc:
            await self._after_driver_error(conn, exc)
            raise
        return await super()._apply(conn, WriteSet(moves=rows.moves))

    async def _durable(self, conn: AsyncConnection, driver: Any) -> None:
        """Make this commit wait for the WAL flush (it holds a ``202``), once per transaction."""
        if self.durable_transitions:
            return
        transaction = conn.get_transaction()
        if conn.info.get(_DURABLE_MARK) is not transaction:
            await driver.execute("SET LOCAL synchronous_commit = on")
            conn.info[_DURABLE_MARK] = transaction

    async def update_states(self, conn: AsyncConnection, updates: list[dict[str, Any]]) -> int:
        """One ``UPDATE … FROM unnest(arrays)`` for every transition of the commit.

        A job named twice takes its last update, as the base's executemany would leave it.
        """
        latest = list({row[f"{UPDATE_PREFIX}job_ref"]: row for row in updates}.values())
        names = ("job_ref", "status", "attempt", "due_at", "ready_at")
        binders = [_binder(job_state, name, conn.dialect) for name in names]
        values = [
            [bind(row[UPDATE_PREFIX + name]) if bind else row[UPDATE_PREFIX + name] for row in latest]
            for name, bind in zip(names, binders, strict=True)
        ]
        try:
            status = await (await _driver(conn)).execute(UPDATE_STATES, *values)
        except BaseException as exc:
            await self._after_driver_error(conn, exc)
            raise
        changed = int(status.split()[-1])
        return len(updates) if changed == len(latest) else changed

    def is_unavailable(self, exc: BaseException) -> bool:
        if super().is_unavailable(exc):
            return True
        seen: set[int] = set()
        cause: BaseException | None = exc
        while cause is not None and id(cause) not in seen:
            seen.add(id(cause))
            if isinstance(cause, DISCONNECTED):
                return True
            sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
            if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATES:
                return True
            cause = cause.__cause__ or getattr(cause, "orig", None)
        return False


_DURABLE_MARK = "core_durable_transaction"

UPDATE_STATES = """
UPDATE job_state AS s
SET status = u.status, attempt = u.attempt, due_at = u.due_at, ready_at = u.ready_at,
    lease_owner = NULL, lease_expires_at = NULL
FROM unnest($1::varchar[], $2::varchar[], $3::integer[], $4::timestamptz[], $5::timestamptz[])
    AS u(job_ref, status, attempt, due_at, ready_at)
JOIN jobs AS j ON j.id = u.job_ref
WHERE s.job_seq = j.seq
"""


#: The dialect the shared queries are compiled for, to run on asyncpg directly.
_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]


@functools.cache
def _claim_sql() -> CompiledClaim:
    """The claim's ``SELECT … FOR UPDATE OF job_state SKIP LOCKED``, compiled once."""
    return compiled_due(_DIALECT, lambda query: query.with_for_update(skip_locked=True, of=job_state))


@functools.cache
def _events_by_id_sql() -> Compiled:
    """The read of events by id (:func:`~core.sqlstore.compiled_events_by_id`), compiled once."""
    return compiled_events_by_id(_DIALECT)


#: A claim's ``job_state`` update of the found rows.
_CLAIMED = ("UPDATE job_state SET status = 'executing', attempt = attempt + 1, due_at = NULL, ready_at = $2, "
            "lease_owner = $3, lease_expires_at = $4 WHERE job_seq = ANY($1::bigint[])")


async def _driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn``, inside the writer's transaction."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if driver is None or not driver.is_in_transaction():
        raise RuntimeError("the PostgreSQL store wrote outside a transaction (begin_write not called?)")
    return driver


def _column(table: Table, name: str) -> Column[Any]:
    """The column a row key fills (``job_ref`` is the job's id, joined to ``job_seq``)."""
    return jobs.c.id if name == "job_ref" else table.c[name]


def _binder(table: Table, name: str, dialect: Any) -> Any:
    """The bind-side conversion of a column's type (JSON to text, datetimes to UTC), if any."""
    column_type = _column(table, name).type
    if isinstance(column_type, TypeDecorator):
        return lambda value: column_type.process_bind_param(value, dialect)
    return None


def _arrays(table: Table, columns: tuple[str, ...], rows: list[dict[str, Any]], dialect: Any) -> list[list[Any]]:
    """One array per column of ``rows``, values converted as the column's type binds them."""
    binders = [_binder(table, name, dialect) for name in columns]
    return [
        [bind(row[name]) for row in rows] if bind else [row[name] for row in rows]
        for name, bind in zip(columns, binders, strict=True)
    ]


def _insert_together(tables: list[tuple[Table, list[dict[str, Any]]]], dialect: Any) -> tuple[str, list[Any]]:
    """ONE statement inserting the rows of every table (``jobs`` among them), and its arguments.

    Each table's ``INSERT … SELECT FROM unnest`` is a data-modifying ``WITH`` (the last one the
    main statement); rows naming their job by ``job_ref`` take its ``job_seq`` from the jobs
    inserted by the same statement (``RETURNING seq, id``), in row order. Foreign keys are
    checked at the end of the statement, when every table's rows are in."""
    args: list[Any] = []
    parts: list[str] = []
    for table, rows in tables:
        columns = tuple(rows[0])
        arrays = ", ".join(
            f"${len(args) + i}::{_column(table, name).type.compile(dialect=dialect)}[]"
            for i, name in enumerate(columns, 1)
        )
        args += _arrays(table, columns, rows, dialect)
        aliases = ", ".join(f"c{i}" for i in range(len(columns)))
        targets = [name for name in columns if name != "job_ref"]
        picks = [f"u.c{columns.index(name)}" for name in targets]
        joined = returning = ""
        if "job_ref" in columns:
            targets.append("job_seq")
            picks.append("j.seq")
            joined = f" LEFT JOIN new_jobs AS j ON j.id = u.c{columns.index('job_ref')}"
        if table is jobs:
            returning = " RETURNING seq, id"
        parts.append(f"INSERT INTO {table.name} ({', '.join(targets)}) SELECT {', '.join(picks)} "
                     f"FROM unnest({arrays}) WITH ORDINALITY AS u({aliases}, n){joined} ORDER BY u.n{returning}")
    names = {events: "new_events", jobs: "new_jobs", transitions: "new_transitions", job_state: "new_states"}
    *ctes, last = parts
    if not ctes:
        return last, args
    ctes = [f"{names[table]} AS ({sql})" for (table, _), sql in zip(tables, ctes, strict=False)]
    return f"WITH {', '.join(ctes)} {last}", args


@functools.lru_cache(maxsize=64)
def _unnest_insert(table: Table, columns: tuple[str, ...], dialect: Any) -> str:
    """``INSERT … SELECT FROM unnest($1::type[], …)`` in row order, resolving ``job_ref``."""
    arrays = ", ".join(
        f"${i}::{_column(table, name).type.compile(dialect=dialect)}[]" for i, name in enumerate(columns, 1)
    )
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    targets = [name for name in columns if name != "job_ref"]
    picks = [f"u.c{columns.index(name)}" for name in targets]
    joined = ""
    if "job_ref" in columns:
        targets.append("job_seq")
        picks.append("j.seq")
        joined = f" LEFT JOIN jobs AS j ON j.id = u.c{columns.index('job_ref')}"
    return (
        f"INSERT INTO {table.name} ({', '.join(targets)}) SELECT {', '.join(picks)} "
        f"FROM unnest({arrays}) WITH ORDINALITY AS u({aliases}, n){joined} ORDER BY u.n"
    )


async def _tune(conn: AsyncConnection, table: str, settings: dict[str, str]) -> None:
    """Set storage parameters of ``table`` unless already set (no lock taken then)."""
    current = (await conn.execute(
        text("SELECT reloptions FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
    )).scalar_one_or_none() or []
    wanted = [f"{key}={value}" for key, value in settings.items()]
    if sorted(current) != sorted(wanted):
        await conn.execute(text(f"ALTER TABLE {table} SET ({', '.join(wanted)})"))
