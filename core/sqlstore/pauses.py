"""Paused actions in the SQL store: the ``pauses`` table (store schema 2 -> 3) and its writes.

The scheduler reads :func:`read_pauses` before each claim (scheduled and realtime) and claims
nothing for a paused action; resuming removes the row, and the backlog drains on the next ticks.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.sqlstore.schema import pauses
from hookspecs import Pause


async def add_pauses(conn: AsyncConnection) -> None:
    """Store schema 2 -> 3: the ``pauses`` table."""
    await conn.run_sync(lambda sync: pauses.create(sync, checkfirst=True))


async def write_pause(conn: AsyncConnection, pause: Pause) -> bool:
    """Pause ``pause.destination``/``pause.action``; ``False`` if it was paused already."""
    found = await conn.execute(
        select(pauses.c.who).where(pauses.c.destination == pause.destination, pauses.c.action == pause.action)
    )
    if found.first() is not None:
        return False
    await conn.execute(
        pauses.insert().values(
            destination=pause.destination,
            action=pause.action,
            who=pause.who,
            reason=pause.reason,
            created_at=pause.created_at,
        )
    )
    return True


async def remove_pause(conn: AsyncConnection, destination: str, action: str) -> bool:
    """Resume; ``False`` if it was not paused."""
    result = await conn.execute(delete(pauses).where(pauses.c.destination == destination, pauses.c.action == action))
    return bool(result.rowcount)


async def read_pauses(conn: AsyncConnection) -> list[Pause]:
    """Every pause, by destination and action."""
    rows = await conn.execute(select(pauses).order_by(pauses.c.destination, pauses.c.action))
    return [
        Pause(destination=r.destination, action=r.action, who=r.who, reason=r.reason, created_at=r.created_at)
        for r in rows
    ]
