"""``SQLiteStore``: the embedded store on a SQLite file (WAL, group commit, one writer).

The connection set-up is in :mod:`core.sqlstore.sqlite_engine`. ``sqlite:///:memory:`` works
too: one connection that reads and writes take in turn (an in-memory database exists only
inside its connection), for tests and throw-away runs; nothing survives ``close``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Table
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.errors import ConfigError
from core.sqlstore.rows import UPDATE_PREFIX
from core.sqlstore.sqlite_engine import (
    STATE_UPDATE_SQL,
    begin_immediate,
    database_path,
    insert_sql,
    make_parent,
    sql_time,
    sqlite_engine,
    sqlite_unavailable,
)
from core.sqlstore.store import SQLStore, async_url


class SQLiteStore(SQLStore):
    """The store on a SQLite file: ``sqlite:////abs/path.db`` (the host makes paths absolute).

    :param busy_timeout_ms: how long a write waits for another process's write lock before
        the call raises :class:`~hookspecs.StoreUnavailable`.

    Other options: see :class:`~core.sqlstore.store.SQLStore`.
    """

    def __init__(self, url: str, *, busy_timeout_ms: int = 5000, **options: Any) -> None:
        if busy_timeout_ms < 0:
            raise ConfigError("options of the store", "busy_timeout_ms", busy_timeout_ms, "a number >= 0")
        super().__init__(url, **options)
        self.busy_timeout_ms = busy_timeout_ms
        self._url = async_url(url)
        self.path = database_path(self._url)

    def extra_options_hint(self) -> str:
        return ", busy_timeout_ms"

    async def prepare(self) -> None:
        await make_parent(self.path)

    def create_engine(self) -> AsyncEngine:
        if self.path is None:
            self._exclusive = asyncio.Lock()
        return sqlite_engine(self._url, self.busy_timeout_ms)

    async def begin_write(self, conn: AsyncConnection) -> None:
        await begin_immediate(conn)

    async def insert_rows(self, conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
        """One executemany of plain tuples: SQLAlchemy's per-value type processing would be
        the largest cost of a batch, so values are converted here in one pass."""
        sql, to_tuple = insert_sql(table, by_ref="job_ref" in rows[0])
        await conn.exec_driver_sql(sql, [to_tuple(row) for row in rows])

    async def update_states(self, conn: AsyncConnection, updates: list[dict[str, Any]]) -> int:
        status, attempt, due_at, ready_at, ref = (
            f"{UPDATE_PREFIX}{name}" for name in ("status", "attempt", "due_at", "ready_at", "job_ref")
        )
        params = [(u[status], u[attempt], sql_time(u[due_at]), sql_time(u[ready_at]), u[ref]) for u in updates]
        result = await conn.exec_driver_sql(STATE_UPDATE_SQL, params)
        return result.rowcount

    def is_unavailable(self, exc: BaseException) -> bool:
        # SQLite reports bugs ("no such table") as OperationalError too: judge those by text.
        if isinstance(exc, OperationalError):
            return sqlite_unavailable(exc)
        return super().is_unavailable(exc)
