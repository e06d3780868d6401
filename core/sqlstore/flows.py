"""Disabled flows in the SQL store: the ``disabled_flows`` table (store schema 3 -> 4) and its writes.

Gateways read :func:`read_disabled` every ``gateway.flow_refresh_seconds`` and make no jobs of a
disabled flow for the events they store; enabling removes the row. Disabling is one
``INSERT … ON CONFLICT DO NOTHING``, so of two concurrent writers (any processes) one wins.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.sqlstore.idempotency import UPSERT_DIALECTS
from core.sqlstore.schema import disabled_flows
from hookspecs import DisabledFlow


async def add_disabled_flows(conn: AsyncConnection) -> None:
    """Store schema 3 -> 4: the ``disabled_flows`` table."""
    await conn.run_sync(lambda sync: disabled_flows.create(sync, checkfirst=True))


async def write_disabled(conn: AsyncConnection, disabled: DisabledFlow) -> bool:
    """Disable ``disabled.flow``; ``False`` if it was disabled already."""
    module = UPSERT_DIALECTS.get(conn.dialect.name)
    if module is None:
        raise NotImplementedError(f"disabling a flow needs INSERT … ON CONFLICT, not known for {conn.dialect.name!r}")
    statement = module.insert(disabled_flows).values(
        flow=disabled.flow, who=disabled.who, reason=disabled.reason, created_at=disabled.created_at
    )
    result = await conn.execute(statement.on_conflict_do_nothing(index_elements=["flow"]))
    return bool(result.rowcount)


async def remove_disabled(conn: AsyncConnection, flow: str) -> bool:
    """Enable ``flow``; ``False`` if it was not disabled."""
    result = await conn.execute(delete(disabled_flows).where(disabled_flows.c.flow == flow))
    return bool(result.rowcount)


async def read_disabled(conn: AsyncConnection) -> list[DisabledFlow]:
    """Every disabled flow, by name."""
    rows = await conn.execute(select(disabled_flows).order_by(disabled_flows.c.flow))
    return [DisabledFlow(flow=r.flow, who=r.who, reason=r.reason, created_at=r.created_at) for r in rows]
