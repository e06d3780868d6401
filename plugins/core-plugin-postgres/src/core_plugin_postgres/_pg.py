"""Connections shared by the adapters: URL forms, an asyncpg pool, and which errors mean
"the server cannot be reached" (so each adapter raises its kind's *Unavailable* error).

Accepted URL schemes: ``postgresql``, ``postgres`` and ``postgresql+asyncpg``; the rest of
the URL is libpq's (``postgresql://user:password@host:port/database?sslmode=require``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from hookspecs import ConfigError, StoreUnavailable, redacted_url

SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")

#: Errors raised when the server went away, refused us or a backend was terminated.
DISCONNECTED: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # 57P01 admin shutdown, pg_terminate_backend
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    # "another operation is in progress": a connection left mid-protocol when the server cut it
    asyncpg.exceptions.InternalClientError,
)


def dsn(url: str) -> str:
    """The libpq/asyncpg form of a configured URL (scheme ``postgresql``)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError("configuration", "url", url, f"a URL with scheme {' or '.join(SCHEMES)}")
    return urlunsplit(("postgresql", *parts[1:]))


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy form of a configured URL (``postgresql+asyncpg``)."""
    return "postgresql+asyncpg" + dsn(url)[len("postgresql") :]


async def create_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, settings: dict[str, str] | None = None
) -> asyncpg.Pool:
    """An asyncpg pool (``settings``: server settings of its sessions); a connection found
    closed is replaced on the next acquire."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn(url), min_size=min_size, max_size=max_size, command_timeout=60, server_settings=settings or {}
    )
    return pool


async def connect(url: str) -> asyncpg.Connection:
    """One dedicated connection (LISTEN needs its own)."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn(url))
    return conn


#: The advisory lock key every adapter takes while it creates or upgrades its tables, so
#: nodes starting together do not race on ``CREATE TABLE IF NOT EXISTS`` (which can fail
#: with a duplicate-key error when two sessions run it at once).
SCHEMA_LOCK = 0x636F7265  # "core"


async def create_schema(conn: asyncpg.Connection | asyncpg.Pool, ddl: str) -> None:
    """Run ``ddl`` in one transaction holding the schema lock."""
    async with contextlib.AsyncExitStack() as stack:
        if isinstance(conn, asyncpg.Pool):
            conn = await stack.enter_async_context(conn.acquire())
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
            await conn.execute(ddl)


@contextlib.asynccontextmanager
async def schema_locked(url: str, what: str) -> AsyncIterator[None]:
    """Hold the schema lock while the body creates or upgrades tables through its own
    connections (the store's and the wanderer's engines): a session lock on a connection of
    its own, released when that session ends. ``what`` names the database in the
    :class:`~hookspecs.StoreUnavailable` raised when the server cannot be reached."""
    try:
        lock = await connect(url)
    except DISCONNECTED as exc:
        raise StoreUnavailable(f"{what} {redacted_url(url)} is unavailable: {exc}") from exc
    try:
        await lock.execute("SELECT pg_advisory_lock($1)", SCHEMA_LOCK)
        yield
    finally:
        await lock.close()  # ends the session: the lock goes with it
