"""``SQLDatabase``: what the SQL store and the SQL wanderer share, with its dialect hooks.

A component (``store``, ``wanderer``) owns some tables in a SQL database. This base builds its
async engine, ensures its tables at the recorded schema version on :meth:`~SQLDatabase.open`
(:mod:`~core.sqlstore.versioning`), and hands out connections whose "database unreachable"
errors are :class:`~hookspecs.StoreUnavailable`. A dialect overrides the hooks
(:meth:`~SQLDatabase.create_engine`, :meth:`~SQLDatabase.prepare`,
:meth:`~SQLDatabase.begin_write`, :meth:`~SQLDatabase.is_unavailable`) and uses the protected
members (:attr:`~SQLDatabase.engine`, :meth:`~SQLDatabase.connection`,
:meth:`~SQLDatabase.writing`); ``docs/plugin-helpers.md`` documents them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import Table
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from core.errors import ConfigError
from core.sqlstore.versioning import Step, ensure_schema
from hookspecs import StoreUnavailable

#: The async driver used for a plain URL scheme.
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}


def async_url(url: str) -> URL:
    """``url`` with the async driver of its scheme (``sqlite://`` → ``sqlite+aiosqlite://``)."""
    parsed = make_url(url)
    return parsed.set(drivername=ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername))


class SQLDatabase:
    """A component's tables in a SQL database; see the module docstring.

    :param url: a SQLAlchemy URL; a plain scheme gets its async driver (:data:`ASYNC_DRIVERS`).
    :param options: none here: an option no class of the chain took is refused, naming
        :meth:`option_names`.
    """

    #: The component whose tables these are, and the name its schema version is recorded under.
    component: ClassVar[str]
    #: The component's tables, created on a fresh database.
    tables: ClassVar[Sequence[Table]]
    #: The version of :attr:`tables`; bump it and add a step to :attr:`schema_steps`.
    schema_version: ClassVar[int]
    #: Upgrade steps of the tables: ``schema_steps[n]`` takes version n to n + 1.
    schema_steps: ClassVar[Mapping[int, Step]] = {}

    def __init__(self, url: str, **options: Any) -> None:
        if options:
            raise ConfigError(
                f"options of the {self.component}", ", ".join(sorted(options)), options,
                f"known options: {', '.join(self.option_names()) or 'none'}",
            )
        self.url = url
        self._engine: AsyncEngine | None = None
        #: When set, connections are used one at a time (a database with one connection).
        self._turns: asyncio.Lock | None = None

    # -- dialect hooks ----------------------------------------------------------------------

    def option_names(self) -> list[str]:
        """The options the constructors take, for the unknown-option error; a subclass adds its
        own to ``super().option_names()``."""
        return []

    def create_engine(self) -> AsyncEngine:
        """Build the async engine (driver, pool, connect-time settings such as pragmas)."""
        return create_async_engine(async_url(self.url))

    async def prepare(self) -> None:
        """Run before the engine is built (e.g. create the database file's directory)."""

    async def begin_write(self, conn: AsyncConnection) -> None:
        """Start a write transaction on ``conn`` (SQLite: ``BEGIN IMMEDIATE``)."""
        await conn.begin()

    def is_unavailable(self, exc: BaseException) -> bool:
        """Does ``exc`` mean the database cannot be reached (rather than bad data or a bug)?"""
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        return isinstance(exc, OperationalError | InterfaceError | PoolTimeout | OSError | ConnectionError)

    # -- protected members for dialects -----------------------------------------------------

    @property
    def shown_url(self) -> str:
        """The URL with its password hidden, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def engine(self) -> AsyncEngine | None:
        """The engine :meth:`create_engine` built, while open (``None`` before :meth:`open` and
        after :meth:`close`). A dialect uses it for what SQLAlchemy does not see, e.g. to
        dispose of the pool after its driver reported a disconnect."""
        return self._engine

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection of the engine, for reads and a dialect's own statements. "Cannot reach
        the database" errors, including those of releasing the connection (a rollback on a
        dead one), become :class:`~hookspecs.StoreUnavailable`, and so does a closed database."""
        if self._engine is None:
            raise StoreUnavailable(f"the {self.component} {self.shown_url} is closed (or was never opened)")
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self._turns is not None:
                    await stack.enter_async_context(self._turns)
                yield await stack.enter_async_context(self._engine.connect())
        except StoreUnavailable:
            raise
        except Exception as exc:
            if self.is_unavailable(exc):
                raise StoreUnavailable(f"the {self.component} {self.shown_url} is unavailable: {exc}") from exc
            raise

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A :meth:`connection` in a write transaction begun by :meth:`begin_write`; the caller
        commits, an error rolls back."""
        async with self.connection() as conn:
            await self.begin_write(conn)
            yield conn

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Build the engine and create or upgrade the component's tables (idempotent)."""
        if self._engine is not None:
            return
        await self.prepare()
        self._engine = self.create_engine()
        try:
            async with self.writing() as conn:
                await ensure_schema(conn, self.component, self.tables, self.schema_version, self.schema_steps)
                await conn.commit()
        except BaseException:
            await self._engine.dispose()
            self._engine = None
            raise

    async def close(self) -> None:
        """Dispose of the engine and its connections (idempotent)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()
