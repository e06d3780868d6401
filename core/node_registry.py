"""Which processes use a store: the node registry of the supervisor that follows the store.

A process on ``local://`` keeps its leases in memory, so a second process on the same store
would run every cron tick and scheduled load again. Each gateway and scheduler therefore
records itself in the store's own registry (the SQLite file, the PostgreSQL database), saying
which supervisor it uses, and refuses to start beside a live process when either is local.
"""

from __future__ import annotations

from core.errors import CoreError
from hookspecs import Node, Supervisor


async def refuse_unshared_neighbours(registry: Supervisor, node: Node) -> None:
    """Raise if ``node`` and a live node of another process on this registry would not share leases.

    Nodes of this very process (same host and pid: a gateway and a scheduler run together, or
    several runtimes in one test) share a ``local://`` supervisor, so they are left out.

    :raises CoreError: naming the other process and the fix.
    """
    mine = node.meta.get("supervisor", "")
    for other in await registry.nodes():
        if other.id == node.id or (other.host, other.meta.get("pid")) == (node.host, node.meta.get("pid")):
            continue
        theirs = other.meta.get("supervisor", "")
        if "local" in (mine, theirs):
            raise CoreError(
                f"another process uses this store: {other.service} pid {other.meta.get('pid', '?')} on "
                f"{other.host} (supervisor {theirs or '?'}), and this one would use supervisor {mine or '?'}; "
                "local:// locks within one process only, so both would run every cron tick and scheduled load",
                hint="remove 'supervisor = \"local://\"' from the configuration of every process (the default "
                "'store' shares leases through the store), or stop the other process; a process killed "
                "without stopping is forgotten once its heartbeat lapses (nodes.ttl_seconds)",
            )
