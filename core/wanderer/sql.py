"""``SQLWanderer``: the history of migration runs in a SQL table (the built-in, on SQLite).

Every transition of every run is one appended row of ``wanderer_runs``, ordered by insertion
(``seq``). A version is applied when its latest transition is a succeeded ``up``. The table's
schema version is recorded by :func:`core.sqlstore.versioning.ensure_schema` (component
``wanderer``), so a later release upgrades it instead of recreating it. The wanderer shares
the store's option table (``[options.sqlite]``); it uses ``busy_timeout_ms`` and ignores the
store's own options.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from core.builtin.sqlite.engine import begin_immediate, database_path, make_parent, sqlite_engine
from core.errors import ConfigError
from core.sqlstore.schema import UTCDateTime
from core.sqlstore.store import async_url
from core.sqlstore.versioning import Step, ensure_schema
from hookspecs import Direction, MigrationRun, Status

SCHEMA_VERSION = 1
#: Options of the shared ``[options.sqlite]`` table that belong to the store.
_STORE_OPTIONS = frozenset({"commit_delay_ms", "max_batch", "purge_batch"})

metadata = MetaData()
runs = Table(
    "wanderer_runs", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(27), nullable=False, unique=True),
    Column("scope", String(255), nullable=False),
    Column("version", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_wanderer_runs_scope", "scope", "seq"),
)


class SQLWanderer:
    """:class:`~hookspecs.Wanderer` on a SQL database (``sqlite:////abs/path.db``).

    :param busy_timeout_ms: how long a write waits for another process's lock (SQLite).
    """

    #: Upgrade steps of ``wanderer_runs``: ``schema_steps[n]`` takes version n to n + 1.
    schema_steps: ClassVar[Mapping[int, Step]] = {}

    def __init__(self, url: str, *, busy_timeout_ms: int = 5000, **options: Any) -> None:
        unknown = set(options) - _STORE_OPTIONS
        if unknown:
            raise ConfigError("options of the wanderer", ", ".join(sorted(unknown)), options,
                              "known options: busy_timeout_ms (and the store's: commit_delay_ms, ...)")
        self.url = url
        self.busy_timeout_ms = busy_timeout_ms
        self._url = async_url(url)
        self._sqlite = self._url.get_backend_name() == "sqlite"
        self._engine: AsyncEngine | None = None
        #: One operation at a time: migrations are rare, and an in-memory database has one connection.
        self._turns = asyncio.Lock()

    async def open(self) -> None:
        if self._engine is not None:
            return
        self._turns = asyncio.Lock()  # of this event loop
        if self._sqlite:
            await make_parent(database_path(self._url))
            engine = sqlite_engine(self._url, self.busy_timeout_ms)
        else:
            engine = create_async_engine(self._url)
        self._engine = engine
        try:
            async with self._writing() as conn:
                await ensure_schema(conn, "wanderer", [runs], SCHEMA_VERSION, self.schema_steps)
                await conn.commit()
        except BaseException:
            self._engine = None
            await engine.dispose()
            raise

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        if self._engine is None:
            raise RuntimeError(f"the wanderer {self.url} is closed (or was never opened)")
        async with self._turns, self._engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        async with self._connection() as conn:
            if self._sqlite:
                await begin_immediate(conn)
            else:
                await conn.begin()
            yield conn

    async def record(self, run: MigrationRun) -> None:
        async with self._writing() as conn:
            await conn.execute(insert(runs).values(
                id=run.id, scope=run.scope, version=run.version, name=run.name,
                direction=run.direction.value, status=run.status.value, error=run.error,
                created_at=run.created_at,
            ))
            await conn.commit()

    async def history(self, scope: str | None = None) -> list[MigrationRun]:
        query = select(runs).order_by(runs.c.seq)
        if scope is not None:
            query = query.where(runs.c.scope == scope)
        async with self._connection() as conn:
            rows = (await conn.execute(query)).all()
        return [
            MigrationRun(
                id=row.id, version=row.version, scope=row.scope, name=row.name,
                direction=Direction(row.direction), status=Status(row.status),
                created_at=row.created_at, error=row.error,
            )
            for row in rows
        ]

    async def applied(self, scope: str) -> list[str]:
        latest: dict[str, MigrationRun] = {}
        for run in await self.history(scope):
            latest[run.version] = run
        return sorted(
            version for version, run in latest.items()
            if run.direction is Direction.UP and run.status is Status.SUCCEEDED
        )
