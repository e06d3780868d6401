"""The version of each component's tables, kept in the database next to them.

A component (``store``, ``wanderer``) owns some tables and a version number. On open, a fresh
database gets the current tables and version; an older one is upgraded step by step (each
step takes the schema from version ``n`` to ``n + 1``); a newer one is refused, since this
release cannot know what changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import CoreError
from core.sqlstore.schema import UTCDateTime

#: ``steps[n]`` upgrades a component's tables from version ``n`` to ``n + 1``.
Step = Callable[[AsyncConnection], Awaitable[None]]

_metadata = MetaData()
schema_versions = Table(
    "schema_versions", _metadata,
    Column("component", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("migrated_at", UTCDateTime, nullable=False),
)


class SchemaTooNew(CoreError):
    """The database was written by a newer release than this one."""


async def ensure_schema(
    conn: AsyncConnection,
    component: str,
    tables: Sequence[Table],
    version: int,
    steps: Mapping[int, Step] | None = None,
) -> int:
    """Create or upgrade ``component``'s ``tables`` to ``version`` inside ``conn``'s transaction.

    :return: the version found before (0 for a fresh database).
    """
    await conn.run_sync(lambda sync: _metadata.create_all(sync, checkfirst=True))
    found: int | None = (await conn.execute(
        select(schema_versions.c.version).where(schema_versions.c.component == component)
    )).scalar_one_or_none()
    now = datetime.now(UTC)
    if found is None:
        await conn.run_sync(lambda sync: tables[0].metadata.create_all(sync, tables=list(tables)))
        await conn.execute(insert(schema_versions).values(component=component, version=version, migrated_at=now))
        return 0
    if found > version:
        raise SchemaTooNew(
            f"the {component} tables are at schema version {found}, newer than this release's {version}",
            hint="upgrade core (and its plugins) to the release that wrote this database",
        )
    for current in range(found, version):
        step = (steps or {}).get(current)
        if step is None:
            raise CoreError(f"no upgrade of the {component} tables from schema version {current}")
        await step(conn)
    if found < version:
        await conn.execute(
            update(schema_versions).where(schema_versions.c.component == component)
            .values(version=version, migrated_at=now)
        )
    return found
