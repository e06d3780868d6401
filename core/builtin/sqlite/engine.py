"""SQLite connections for the store and the wanderer: WAL, explicit BEGIN, fast inserts.

Every connection runs in WAL mode with ``synchronous=NORMAL`` (a commit survives a crash of
the process; a power loss may drop the last commits, never corrupt the file), a busy timeout
and foreign keys on. The driver's own transaction handling is switched off, so writers say
``BEGIN IMMEDIATE`` (the write lock is taken up front: two processes on one file queue behind
the busy timeout instead of failing mid-transaction) and readers a deferred ``BEGIN``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Table, create_engine, event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from core.errors import ConfigError, CoreError
from core.sqlstore.rows import UPDATE_PREFIX
from core.sqlstore.schema import NO_DUE_TIME, JSONText, UTCDateTime, utc_text

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
    return None if database in ("", ":memory:") or url.query.get("mode") == "memory" else Path(database)


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


# -- multi-row inserts of plain tuples -------------------------------------------------------

#: Turns one row dict into the tuple of an ``INSERT``'s parameters.
RowToTuple = Callable[[dict[str, Any]], tuple[Any, ...]]
_INSERTS: dict[tuple[str, bool], tuple[str, RowToTuple]] = {}


#: The last two datetimes converted and their texts: a batch repeats a few values (the claim's
#: ``now`` and lease expiry, ``NO_DUE_TIME``) for every row. Holding them makes ``is`` safe;
#: the tuple is replaced whole, so writer threads of several stores can share it.
_recent: tuple[Any, ...] = (NO_DUE_TIME, utc_text(NO_DUE_TIME), None, None)


def sql_time(value: datetime | None) -> str | None:
    """A datetime as :class:`~core.sqlstore.schema.UTCDateTime` stores it on SQLite."""
    global _recent
    if value is None:
        return None
    recent = _recent
    if value is recent[0]:
        return recent[1]  # type: ignore[no-any-return]
    if value is recent[2]:
        return recent[3]  # type: ignore[no-any-return]
    text = utc_text(value)
    _recent = (value, text, recent[0], recent[1])
    return text


def sql_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def insert_sql(table: Table, *, by_ref: bool) -> tuple[str, RowToTuple]:
    """``INSERT`` text with ``?`` placeholders, and a function from a row dict to its parameters.

    The same statement as the base store's (``by_ref``: ``job_seq`` looked up from
    ``job_ref``), with values converted in one pass instead of SQLAlchemy's per-value type
    processing. The function is generated once per table, one expression per column, because
    it runs for every row of every batch.
    """
    key = (table.name, by_ref)
    if key not in _INSERTS:
        names = [c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)]
        resolve = by_ref and "job_seq" in names
        cells = []
        for name in names:
            kind = type(table.c[name].type)
            cell = f"row[{('job_ref' if resolve and name == 'job_seq' else name)!r}]"
            cells.append(f"sql_time({cell})" if kind is UTCDateTime else f"sql_json({cell})" if kind is JSONText
                         else cell)
        to_tuple = eval(f"lambda row: ({', '.join(cells)},)", {"sql_time": sql_time, "sql_json": sql_json})
        values = ", ".join("(SELECT seq FROM jobs WHERE id = ?)" if resolve and n == "job_seq" else "?"
                           for n in names)
        _INSERTS[key] = (f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({values})", to_tuple)
    return _INSERTS[key]


def insert_params(table: Table, rows: list[dict[str, Any]]) -> tuple[str, list[tuple[Any, ...]]]:
    """The ``INSERT`` of ``rows`` into ``table`` and its parameters (see :func:`insert_sql`)."""
    sql, to_tuple = insert_sql(table, by_ref="job_ref" in rows[0])
    return sql, [to_tuple(row) for row in rows]


def state_update_params(updates: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Parameters of :data:`STATE_UPDATE_SQL` for rows built by :func:`~core.sqlstore.rows.state_update`."""
    status, attempt, due_at, ready_at, ref = (
        f"{UPDATE_PREFIX}{name}" for name in ("status", "attempt", "due_at", "ready_at", "job_ref")
    )
    return [(u[status], u[attempt], sql_time(u[due_at]), sql_time(u[ready_at]), u[ref]) for u in updates]


#: The state update of :meth:`~core.sqlstore.store.SQLStore.update_states`, as plain SQL.
STATE_UPDATE_SQL = (
    "UPDATE job_state SET status = ?, attempt = ?, due_at = ?, ready_at = ?, lease_owner = NULL, "
    "lease_expires_at = NULL WHERE job_seq = (SELECT seq FROM jobs WHERE id = ?)"
)
