"""``SQLWanderer``: the history of migration runs in a SQL table, dialect-neutral.

Every transition of every run is one appended row of ``wanderer_runs``, ordered by insertion
(``seq``). A version is applied when its latest transition (``acknowledged`` marks aside) is a
succeeded ``up``. Schema version 2 added who ran it (``actor``) and the file's ``checksum``. The table's
schema version is recorded by :func:`~core.sqlstore.versioning.ensure_schema` (component
``wanderer``), so a later release upgrades it instead of recreating it. A dialect
(:class:`~core.builtin.sqlite.wanderer.SQLiteWanderer`, the PostgreSQL plugin's) overrides the
hooks of :class:`~core.sqlstore.database.SQLDatabase`, like the store's dialects do, and may
answer :meth:`SQLWanderer.applied` with a query of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import ClassVar

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.sqlstore.database import SQLDatabase
from core.sqlstore.schema import UTCDateTime
from core.sqlstore.versioning import Step
from hookspecs import Direction, MigrationRun, Status

SCHEMA_VERSION = 2

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
    Column("checksum", String(64)),
    Column("actor", String(255)),
    Index("ix_wanderer_runs_scope", "scope", "seq"),
)


async def _add_actor_and_checksum(conn: AsyncConnection) -> None:
    """Schema 1 → 2: who ran each transition and the checksum of the migration's file."""
    await conn.execute(text("ALTER TABLE wanderer_runs ADD COLUMN checksum VARCHAR(64)"))
    await conn.execute(text("ALTER TABLE wanderer_runs ADD COLUMN actor VARCHAR(255)"))


class SQLWanderer(SQLDatabase):
    """:class:`~hookspecs.Wanderer` on a SQL database; no options of its own.

    One operation runs at a time: migrations are rare, and one connection is enough for them.
    """

    component: ClassVar[str] = "wanderer"
    tables: ClassVar[Sequence[Table]] = (runs,)
    schema_version: ClassVar[int] = SCHEMA_VERSION
    schema_steps: ClassVar[Mapping[int, Step]] = {1: _add_actor_and_checksum}

    async def open(self) -> None:
        if self._engine is None:
            self._turns = asyncio.Lock()  # of this event loop
        await super().open()

    async def record(self, run: MigrationRun) -> None:
        async with self.writing() as conn:
            await conn.execute(insert(runs).values(
                id=run.id, scope=run.scope, version=run.version, name=run.name,
                direction=run.direction.value, status=run.status.value, error=run.error,
                created_at=run.created_at, checksum=run.checksum, actor=run.actor,
            ))
            await conn.commit()

    async def history(self, scope: str | None = None) -> list[MigrationRun]:
        query = select(runs).order_by(runs.c.seq)
        if scope is not None:
            query = query.where(runs.c.scope == scope)
        async with self.connection() as conn:
            rows = (await conn.execute(query)).all()
        return [
            MigrationRun(
                id=row.id, version=row.version, scope=row.scope, name=row.name,
                direction=Direction(row.direction), status=Status(row.status),
                created_at=row.created_at, error=row.error, checksum=row.checksum, actor=row.actor,
            )
            for row in rows
        ]

    async def applied(self, scope: str) -> list[str]:
        latest: dict[str, MigrationRun] = {}
        for run in await self.history(scope):
            if run.status is not Status.ACKNOWLEDGED:
                latest[run.version] = run
        return sorted(
            version for version, run in latest.items()
            if run.direction is Direction.UP and run.status is Status.SUCCEEDED
        )
