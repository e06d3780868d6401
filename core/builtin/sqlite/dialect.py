"""``SQLiteDialect``: the SQLite hooks the store and the wanderer share.

Both open the same file (``sqlite:////abs/path.db``, made absolute by the host) through
:mod:`~core.builtin.sqlite.connections`: its directory is created on open, every connection
is set up there (WAL, busy timeout), writes take the lock up front (``BEGIN IMMEDIATE``), and
SQLite's "locked / cannot open" errors are told from its bugs by their text. An in-memory
database (``sqlite:///:memory:``) has one connection, which its users take in turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.builtin.sqlite.connections import (
    begin_immediate,
    database_path,
    make_parent,
    sqlite_engine,
    sqlite_unavailable,
)
from core.errors import ConfigError
from core.sqlstore import SQLDatabase, async_url


def _check_query(query: Mapping[str, Any], component: str) -> None:
    """Refuse a URL query, which the driver would ignore with a warning (``?busy_timeout=1``)
    or apply to some connections only (the writer thread opens the file by its path)."""
    if query:
        key = sorted(query)[0]
        raise ConfigError(
            f"the {component} URL", f"?{key}", query[key],
            f"the SQLite URL takes no query: set options in [options.{component}] (such as busy_timeout_ms)",
        )


class SQLiteDialect(SQLDatabase):
    """Mixed in before the dialect-neutral class: ``class SQLiteStore(SQLiteDialect, SQLStore)``.

    :param busy_timeout_ms: how long a write waits for another process's write lock before
        the call raises :class:`~hookspecs.StoreUnavailable`.
    """

    def __init__(self, url: str, *, busy_timeout_ms: int = 5000, **options: Any) -> None:
        if busy_timeout_ms < 0:
            raise ConfigError(f"options of the {self.component}", "busy_timeout_ms", busy_timeout_ms,
                              "a number >= 0")
        super().__init__(url, **options)
        self.busy_timeout_ms = busy_timeout_ms
        self._url = async_url(url)
        _check_query(self._url.query, self.component)
        #: The database file, ``None`` for an in-memory database.
        self.path = database_path(self._url)

    def option_names(self) -> list[str]:
        return [*super().option_names(), "busy_timeout_ms"]

    async def prepare(self) -> None:
        await make_parent(self.path)

    def create_engine(self) -> AsyncEngine:
        if self.path is None:
            self._turns = asyncio.Lock()
        return sqlite_engine(self._url, self.busy_timeout_ms)

    async def begin_write(self, conn: AsyncConnection) -> None:
        await begin_immediate(conn)

    def is_unavailable(self, exc: BaseException) -> bool:
        # SQLite reports bugs ("no such table") as OperationalError too: judge those by text.
        if isinstance(exc, OperationalError):
            return sqlite_unavailable(exc)
        return super().is_unavailable(exc)
