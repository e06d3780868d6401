"""``core nodes``: the supervisor's node registry, live and lapsed, and the leases each holds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import click

from core.cli._common import Context, friendly, pass_context, table
from core.cli._store import echo_json, when
from core.errors import CoreError
from hookspecs import Lease, LeaseListing, Node, NodeHistory, Supervisor


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One node as listed: its record, whether it lapsed, the lease keys it holds."""

    id: str
    service: str
    host: str
    pid: str
    started_at: datetime
    heartbeat_at: datetime
    status: str
    leases: list[str]


@click.group("nodes")
def nodes() -> None:
    """Inspect the supervisor's node registry."""


async def _read(supervisor: Supervisor) -> tuple[list[Node], list[Lease]]:
    """Every node the supervisor remembers (lapsed ones too where it keeps them) and its live leases."""
    await supervisor.open()
    try:
        found = await (supervisor.all_nodes() if isinstance(supervisor, NodeHistory) else supervisor.nodes())
        return found, (await supervisor.leases() if isinstance(supervisor, LeaseListing) else [])
    finally:
        await supervisor.close()


@nodes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@pass_context
@friendly
def list_nodes(ctx: Context, as_json: bool) -> None:
    """List gateway and scheduler processes: heartbeat, alive or dead, leases held."""
    host = ctx.host()
    supervisor = host.create("supervisor")
    if supervisor is None:
        raise CoreError("no supervisor is configured, so there is no node registry",
                        hint="set 'supervisor' (the default 'store' follows the store)")
    found, leases = asyncio.run(_read(supervisor))
    lapsed = datetime.now(UTC) - timedelta(seconds=float(host.settings["nodes.ttl_seconds"]))
    rows = [
        NodeRow(
            id=n.id, service=n.service, host=n.host, pid=n.meta.get("pid", "-"), started_at=n.started_at,
            heartbeat_at=n.heartbeat_at, status="alive" if n.heartbeat_at >= lapsed else "dead",
            leases=[lease.key for lease in leases if lease.owner == n.id],
        )
        for n in found
    ]
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("No nodes: no gateway or scheduler has run on this supervisor lately.")
    else:
        click.echo(table(
            ("ID", "SERVICE", "HOST", "PID", "STARTED", "HEARTBEAT", "STATUS", "LEASES"),
            [(r.id, r.service, r.host, r.pid, when(r.started_at), when(r.heartbeat_at), r.status,
              ", ".join(r.leases) or "-") for r in rows],
        ))
