"""``PostgresWanderer``: the history of migration runs in a PostgreSQL table.

Every transition of every run is one appended row (``wanderer_runs``), ordered by insertion.
``applied`` asks the database for the latest transition of each version of a scope
(``DISTINCT ON``) and keeps those that are a succeeded ``up``. The table's schema version is
recorded with :func:`core.sqlstore.versioning.ensure_schema` (component ``wanderer``), so a
later release upgrades it in place instead of recreating it.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.sqlstore.schema import UTCDateTime
from core.sqlstore.versioning import Step, ensure_schema
from hookspecs import Direction, MigrationRun, Status
from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, Text, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core_plugin_postgres._pg import SCHEMA_LOCK, redacted, sqlalchemy_url

SCHEMA_VERSION = 1

metadata = MetaData()
runs = Table(
    "wanderer_runs", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("id", String(27), nullable=False, unique=True),
    Column("scope", String(255), nullable=False),
    Column("version", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_wanderer_runs_scope", "scope", "version", "seq"),
)

APPLIED = text("""
SELECT version FROM (
    SELECT DISTINCT ON (version) version, direction, status FROM wanderer_runs
    WHERE scope = :scope ORDER BY version, seq DESC
) AS latest
WHERE direction = 'up' AND status = 'succeeded' ORDER BY version
""")


class PostgresWanderer:
    """:class:`~hookspecs.Wanderer` on PostgreSQL (``postgresql://…``).

    :param pool_size: connections kept open (migrations are rare: one is plenty).
    """

    #: Upgrade steps of ``wanderer_runs``: ``schema_steps[n]`` takes version n to n + 1.
    schema_steps: Mapping[int, Step] = {}

    def __init__(self, url: str, *, pool_size: int = 1) -> None:
        self.url = url
        self.pool_size = int(pool_size)
        self._engine: AsyncEngine | None = None

    def __repr__(self) -> str:
        return f"PostgresWanderer({redacted(self.url)!r})"

    def _require(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError(f"the wanderer {redacted(self.url)} is closed (or was never opened)")
        return self._engine

    async def open(self) -> None:
        """Connect and create or upgrade ``wanderer_runs``."""
        if self._engine is not None:
            return
        self._engine = create_async_engine(sqlalchemy_url(self.url), pool_size=self.pool_size, max_overflow=2)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
                await ensure_schema(conn, "wanderer", [runs], SCHEMA_VERSION, self.schema_steps)
        except BaseException:
            await self._engine.dispose()
            self._engine = None
            raise

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def record(self, run: MigrationRun) -> None:
        """Append one transition of a run."""
        async with self._require().begin() as conn:
            await conn.execute(insert(runs).values(
                id=run.id, scope=run.scope, version=run.version, name=run.name,
                direction=run.direction.value, status=run.status.value, error=run.error,
                created_at=run.created_at,
            ))

    async def history(self, scope: str | None = None) -> list[MigrationRun]:
        """Every transition, in the order recorded, of one scope or all."""
        query = select(runs).order_by(runs.c.seq)
        if scope is not None:
            query = query.where(runs.c.scope == scope)
        async with self._require().connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            MigrationRun(
                id=r.id, version=r.version, scope=r.scope, name=r.name, direction=Direction(r.direction),
                status=Status(r.status), created_at=r.created_at, error=r.error,
            )
            for r in rows
        ]

    async def applied(self, scope: str) -> list[str]:
        """Versions whose latest transition is a succeeded ``up``, in version order."""
        async with self._require().connect() as conn:
            return list((await conn.execute(APPLIED, {"scope": scope})).scalars())
