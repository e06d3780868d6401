"""SQLite connections for the store and the wanderer: WAL, explicit BEGIN, busy timeout.

Every connection runs in WAL mode with ``synchronous=NORMAL`` (a commit survives a crash of
the process; a power loss may drop the last commits, never corrupt the file), a busy timeout
and foreign keys on. The driver's own transaction handling is switched off, so writers say
``BEGIN IMMEDIATE`` (the write lock is taken up front: two processes on one file queue behind
the busy timeout instead of failing mid-transaction) and readers a deferred ``BEGIN``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from core.errors import ConfigError, CoreError

#: Texts of SQLite errors that mean "cannot use the database now" rather than a bug.
_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "readonly", "disk is full", "closed")


def database_path(url: URL) -> Path | None:
    """The file of a SQLite URL, or ``None`` for an in-memory database.

    :raises ConfigError: for a URL with a host (``sqlite://data.db`` instead of ``sqlite:///data.db``).
    """
    if url.host:
        raise ConfigError(
            "the SQLite URL", "url", url.set(drivername=url.get_backend_name()).render_as_string(),
            "a SQLite URL has three slashes before a relative path and four before an absolute one: "
            "sqlite:///data/core.db, sqlite:////var/lib/core.db, or sqlite:///:memory:",
        )
    database = url.database or ""
    return None if database in ("", ":memory:") else Path(database)


async def make_parent(path: Path | None) -> None:
    """Create the directory of the database file, so a fresh project just works."""
    if path is None:
        return
    try:
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    except OSError as exc:
        raise CoreError(
            f"cannot create the directory {path.parent} of the SQLite database: {exc.strerror or exc}",
            hint="point the URL (store / wanderer in core.toml) at a writable place",
        ) from exc


def sqlite_engine(url: URL, busy_timeout_ms: int) -> AsyncEngine:
    """An aiosqlite engine set up as the module docstring says.

    An in-memory database gets one shared connection (the database exists only inside it):
    its users must take turns.
    """
    shared = {"poolclass": StaticPool} if database_path(url) is None else {}
    engine = create_async_engine(url, **shared)
    _set_up(engine.sync_engine, busy_timeout_ms)
    return engine


def sqlite_sync_engine(path: Path, busy_timeout_ms: int) -> Engine:
    """A plain (pysqlite) engine on the file ``path``, set up like :func:`sqlite_engine`.

    The store's writer thread uses it to run a whole batch of inserts in one call from the
    event loop, instead of one hop to aiosqlite's thread per statement.
    """
    engine = create_engine(URL.create("sqlite+pysqlite", database=str(path)), pool_size=1)
    _set_up(engine, busy_timeout_ms)
    return engine


def _set_up(engine: Engine, busy_timeout_ms: int) -> None:
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # BEGIN is ours (see _on_begin)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        _journal_wal(cursor, busy_timeout_ms)
        for pragma in ("synchronous = NORMAL", "foreign_keys = ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", _on_begin)


def _journal_wal(cursor: Any, busy_timeout_ms: int) -> None:
    """Switch to WAL, retrying "database is locked" within the busy timeout.

    SQLite does not call its busy handler for this switch: processes opening one NEW file at
    the same moment would otherwise fail at once while another one converts the file.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:  # the driver's OperationalError class differs (sqlite3, aiosqlite)
            if "locked" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


async def begin_immediate(conn: AsyncConnection) -> None:
    """Begin a write transaction holding the write lock from the start (``BEGIN IMMEDIATE``)."""
    await conn.execution_options(core_write=True)
    await conn.begin()


def sqlite_unavailable(exc: BaseException) -> bool:
    """Is ``exc`` SQLite saying "cannot use the database now" (locked, unopenable, full)?"""
    return isinstance(exc, OperationalError) and any(text in str(exc.orig).lower() for text in _UNAVAILABLE)


def _on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("core_write") else "BEGIN")
