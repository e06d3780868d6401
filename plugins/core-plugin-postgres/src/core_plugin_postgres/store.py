"""``PostgresStore``: the shared SQL store (:class:`core.sqlstore.SQLStore`) on PostgreSQL.

What differs from SQLite, all through the base's extension points:

- Claims lock the ``job_state`` rows they select with ``FOR UPDATE OF job_state SKIP
  LOCKED``: several schedulers claim concurrently and never receive one job twice.
- Batched inserts of a shared commit go through ``COPY`` (asyncpg's binary
  ``copy_records_to_table``) above ``copy_threshold`` rows, a multi-row ``INSERT`` below.
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

from typing import Any

from core.errors import ConfigError
from core.sqlstore import SQLStore
from core.sqlstore.schema import job_state
from hookspecs import StoreUnavailable
from sqlalchemy import Select, Table, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from core_plugin_postgres._pg import DISCONNECTED, SCHEMA_LOCK, connect, redacted, sqlalchemy_url

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
    Other options: see :class:`~core.sqlstore.SQLStore` (``commit_delay_ms``, ``max_batch``,
    ``purge_batch``).
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        max_overflow: int = 5,
        copy_threshold: int = 200,
        durable_transitions: bool = False,
        **options: Any,
    ) -> None:
        if pool_size < 1 or max_overflow < 0 or copy_threshold < 1:
            raise ConfigError(
                f"options of the store {redacted(url)!r}", "pool_size/max_overflow/copy_threshold",
                (pool_size, max_overflow, copy_threshold),
                "pool_size >= 1, max_overflow >= 0, copy_threshold >= 1",
            )
        super().__init__(url, **options)
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.copy_threshold = copy_threshold
        self.durable_transitions = bool(durable_transitions)

    def __repr__(self) -> str:
        return f"PostgresStore({redacted(self.url)!r})"

    def extra_options_hint(self) -> str:
        return ", pool_size, max_overflow, copy_threshold, durable_transitions"

    def create_engine(self) -> AsyncEngine:
        settings = {} if self.durable_transitions else {"synchronous_commit": "off"}
        return create_async_engine(
            sqlalchemy_url(self.url), pool_size=self.pool_size, max_overflow=self.max_overflow,
            pool_recycle=3600, connect_args={"server_settings": settings},
        )

    def lock_claimed(self, query: Select[Any]) -> Select[Any]:
        return query.with_for_update(skip_locked=True, of=job_state)

    async def open(self) -> None:
        """Create or upgrade the tables under the schema lock (nodes may start together)."""
        try:
            lock = await connect(self.url)
        except DISCONNECTED as exc:
            raise StoreUnavailable(f"the store {redacted(self.url)} is unavailable: {exc}") from exc
        try:
            await lock.execute("SELECT pg_advisory_lock($1)", SCHEMA_LOCK)
            await super().open()
            async with self._writing() as conn:
                await _tune(conn, job_state.name, JOB_STATE_SETTINGS)
                await conn.commit()
        finally:
            await lock.close()  # ends the session: the lock goes with it

    async def insert_rows(self, conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
        if table.name in DURABLE_TABLES and not self.durable_transitions:
            await conn.execute(text("SET LOCAL synchronous_commit = on"))  # this commit holds a 202
        columns = list(rows[0])
        if len(rows) < self.copy_threshold or not all(name in table.c for name in columns):
            # Small batches, or rows whose values the base computes in SQL (a key looked up
            # by a subquery), go through the base's multi-row INSERT.
            await super().insert_rows(conn, table, rows)
            return
        dialect = conn.dialect
        binders = [_binder(table, name, dialect) for name in columns]
        records = [
            tuple(bind(row[name]) if bind else row[name] for name, bind in zip(columns, binders, strict=True))
            for row in rows
        ]
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection  # the asyncpg connection, inside our transaction
        assert driver is not None
        await driver.copy_records_to_table(table.name, records=records, columns=columns)

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


def _binder(table: Table, name: str, dialect: Any) -> Any:
    """The bind-side conversion of a column's type (JSON to text, datetimes to UTC), if any."""
    column_type = table.c[name].type
    if isinstance(column_type, TypeDecorator):
        return lambda value: column_type.process_bind_param(value, dialect)
    return None


async def _tune(conn: AsyncConnection, table: str, settings: dict[str, str]) -> None:
    """Set storage parameters of ``table`` unless already set (no lock taken then)."""
    current = (await conn.execute(
        text("SELECT reloptions FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
    )).scalar_one_or_none() or []
    wanted = [f"{key}={value}" for key, value in settings.items()]
    if sorted(current) != sorted(wanted):
        await conn.execute(text(f"ALTER TABLE {table} SET ({', '.join(wanted)})"))
