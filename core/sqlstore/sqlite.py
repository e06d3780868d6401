"""``SQLiteStore``: the embedded store on a SQLite file (WAL, group commit, one writer).

Every connection runs in WAL mode with ``synchronous=NORMAL`` (a commit survives a crash of
the process; a power loss may drop the last commits, never corrupt the file), a busy timeout,
and foreign keys on. The driver's own transaction handling is switched off so the store says
``BEGIN IMMEDIATE`` for writes (the write lock is taken up front: two processes on one file
queue behind the busy timeout instead of failing mid-transaction) and ``BEGIN`` for reads.

``sqlite:///:memory:`` works too: one connection shared by reads and writes in turn (an
in-memory database exists only inside its connection), for tests and throw-away runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Table, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from core.errors import ConfigError
from core.sqlstore.schema import JSONText, UTCDateTime, utc_text
from core.sqlstore.store import SQLStore, async_url

#: Texts of SQLite errors that mean "cannot use the database now" rather than a bug.
_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "readonly", "disk is full", "closed")


class SQLiteStore(SQLStore):
    """The store on a SQLite file: ``sqlite:////abs/path.db`` (the host makes paths absolute).

    :param busy_timeout_ms: how long a write waits for another process's write lock before
        the call raises :class:`~hookspecs.StoreUnavailable`.
    Other options: see :class:`~core.sqlstore.store.SQLStore`.
    """

    def __init__(self, url: str, *, busy_timeout_ms: int = 5000, **options: Any) -> None:
        if busy_timeout_ms < 0:
            raise ConfigError(f"options of the store {url!r}", "busy_timeout_ms", busy_timeout_ms, "a number >= 0")
        super().__init__(url, **options)
        self.busy_timeout_ms = busy_timeout_ms
        self._url = async_url(url)
        database = self._url.database or ""
        self.in_memory = database in ("", ":memory:") or self._url.query.get("mode") == "memory"
        self.path = None if self.in_memory else Path(database)

    def extra_options_hint(self) -> str:
        return ", busy_timeout_ms"

    async def prepare(self) -> None:
        if self.path is not None:
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)

    def create_engine(self) -> AsyncEngine:
        if self.in_memory:
            self._exclusive = asyncio.Lock()
            engine = create_async_engine(self._url, poolclass=StaticPool)
        else:
            engine = create_async_engine(self._url)
        event.listen(engine.sync_engine, "connect", self._on_connect)
        event.listen(engine.sync_engine, "begin", _on_begin)
        return engine

    def _on_connect(self, dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # the store emits BEGIN itself (see _on_begin)
        cursor = dbapi_connection.cursor()
        for pragma in (f"busy_timeout = {int(self.busy_timeout_ms)}", "journal_mode = WAL",
                       "synchronous = NORMAL", "foreign_keys = ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    async def begin_write(self, conn: AsyncConnection) -> None:
        await conn.execution_options(core_write=True)
        await conn.begin()

    async def insert_rows(self, conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
        """One executemany of plain tuples: SQLAlchemy's per-value type processing is the
        largest cost of a batch otherwise, so values are converted here in one pass."""
        sql, columns = _insert_sql(table)
        await conn.exec_driver_sql(sql, [tuple(convert(row[name]) for name, convert in columns) for row in rows])

    def is_unavailable(self, exc: BaseException) -> bool:
        if isinstance(exc, OperationalError):
            return any(text in str(exc.orig).lower() for text in _UNAVAILABLE)
        return super().is_unavailable(exc)


def _on_begin(conn: Connection) -> None:
    """``BEGIN IMMEDIATE`` on the writer's connection, a deferred ``BEGIN`` on readers'."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("core_write") else "BEGIN")


def _time(value: datetime | None) -> str | None:
    return None if value is None else utc_text(value)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _same(value: Any) -> Any:
    return value


_INSERTS: dict[str, tuple[str, list[tuple[str, Callable[[Any], Any]]]]] = {}


def _insert_sql(table: Table) -> tuple[str, list[tuple[str, Callable[[Any], Any]]]]:
    """``INSERT`` text with ``?`` placeholders and a converter per column (cached per table)."""
    if table.name not in _INSERTS:
        names = [c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)]
        converters: list[tuple[str, Callable[[Any], Any]]] = []
        for name in names:
            kind = type(table.c[name].type)
            key = "job_ref" if name == "job_seq" else name
            converters.append((key, _time if kind is UTCDateTime else _json if kind is JSONText else _same))
        values = ", ".join("(SELECT seq FROM jobs WHERE id = ?)" if n == "job_seq" else "?" for n in names)
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({values})"
        _INSERTS[table.name] = (sql, converters)
    return _INSERTS[table.name]
