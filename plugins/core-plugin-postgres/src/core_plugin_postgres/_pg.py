"""Connections shared by the adapters: URL forms, an asyncpg pool, and which errors mean
"the server cannot be reached" (so each adapter raises its kind's *Unavailable* error).

Accepted URL schemes: ``postgresql``, ``postgres`` and ``postgresql+asyncpg``; the rest of
the URL is libpq's (``postgresql://user:password@host:port/database?sslmode=require``).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from core.errors import ConfigError

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


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, *parts[2:]))


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """An asyncpg pool; a connection found closed is replaced on the next acquire."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn(url), min_size=min_size, max_size=max_size, command_timeout=60
    )
    return pool


async def connect(url: str) -> asyncpg.Connection:
    """One dedicated connection (LISTEN needs its own)."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn(url))
    return conn
