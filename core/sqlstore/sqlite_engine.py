"""SQLite connections for the store and the wanderer: WAL, explicit BEGIN, fast inserts.

Every connection runs in WAL mode with ``synchronous=NORMAL`` (a commit survives a crash of
the process; a power loss may drop the last commits, never corrupt the file), a busy timeout
and foreign keys on. The driver's own transaction handling is switched off, so writers say
``BEGIN IMMEDIATE`` (the write lock is taken up front: two processes on one file queue behind
the busy timeout instead of failing mid-transaction) and readers a deferred ``BEGIN``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Table, event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from core.sqlstore.schema import JSONText, UTCDateTime, utc_text

#: Texts of SQLite errors that mean "cannot use the database now" rather than a bug.
_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "readonly", "disk is full", "closed")


def database_path(url: URL) -> Path | None:
    """The file of a SQLite URL, or ``None`` for an in-memory database."""
    database = url.database or ""
    return None if database in ("", ":memory:") or url.query.get("mode") == "memory" else Path(database)


async def make_parent(path: Path | None) -> None:
    """Create the directory of the database file, so a fresh project just works."""
    if path is not None:
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)


def sqlite_engine(url: URL, busy_timeout_ms: int) -> AsyncEngine:
    """An aiosqlite engine set up as the module docstring says.

    An in-memory database gets one shared connection (the database exists only inside it):
    its users must take turns.
    """
    shared = {"poolclass": StaticPool} if database_path(url) is None else {}
    engine = create_async_engine(url, **shared)

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # BEGIN is ours (see _on_begin)
        cursor = dbapi_connection.cursor()
        for pragma in (f"busy_timeout = {int(busy_timeout_ms)}", "journal_mode = WAL",
                       "synchronous = NORMAL", "foreign_keys = ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", _on_begin)
    return engine


async def begin_immediate(conn: AsyncConnection) -> None:
    """Begin a write transaction holding the write lock from the start (``BEGIN IMMEDIATE``)."""
    await conn.execution_options(core_write=True)
    await conn.begin()


def sqlite_unavailable(exc: BaseException) -> bool:
    """Is ``exc`` SQLite saying "cannot use the database now" (locked, unopenable, full)?"""
    return isinstance(exc, OperationalError) and any(text in str(exc.orig).lower() for text in _UNAVAILABLE)


def _on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("core_write") else "BEGIN")


# -- multi-row inserts of plain tuples -------------------------------------------------------

Converter = Callable[[Any], Any]
_INSERTS: dict[str, tuple[str, list[tuple[str, Converter]]]] = {}


def _time(value: datetime | None) -> str | None:
    return None if value is None else utc_text(value)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _same(value: Any) -> Any:
    return value


def insert_sql(table: Table) -> tuple[str, list[tuple[str, Converter]]]:
    """``INSERT`` text with ``?`` placeholders, and the row key and converter of each one.

    The same statement as :data:`~core.sqlstore.schema.INSERTS` (``job_seq`` looked up from
    ``job_ref``), with values converted in one pass instead of SQLAlchemy's type processing.
    """
    if table.name not in _INSERTS:
        names = [c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)]
        converters: list[tuple[str, Converter]] = []
        for name in names:
            kind = type(table.c[name].type)
            key = "job_ref" if name == "job_seq" else name
            converters.append((key, _time if kind is UTCDateTime else _json if kind is JSONText else _same))
        values = ", ".join("(SELECT seq FROM jobs WHERE id = ?)" if n == "job_seq" else "?" for n in names)
        _INSERTS[table.name] = (f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({values})", converters)
    return _INSERTS[table.name]
