"""The supervisor: leases (distributed locks with fencing tokens) and a registry of nodes.

A lease makes a singleton of what must run once across nodes: a cron, CDC or subscription
trigger, a scheduled action's load, a migration. Leases expire: a crashed holder's lease
lapses after its TTL, and the fencing token (strictly increasing per key) lets the protected
resource refuse a holder that woke up after losing its lease.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from hookspecs._markers import hookspec
from hookspecs._registration import AdapterRegistration


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lock: ``token`` increases every time ``key`` changes hands."""

    key: str
    owner: str
    token: int
    expires_at: datetime


@dataclass(slots=True)
class Node:
    """A running process (gateway, scheduler, CLI) as the registry knows it."""

    id: str
    service: str
    host: str
    version: str
    started_at: datetime
    heartbeat_at: datetime
    meta: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The node as a JSON object, for a supervisor that keeps nodes as key-value entries."""
        return json.dumps({
            "id": self.id, "service": self.service, "host": self.host, "version": self.version,
            "started_at": self.started_at.isoformat(), "heartbeat_at": self.heartbeat_at.isoformat(),
            "meta": self.meta,
        })

    @classmethod
    def from_json(cls, text: str | bytes) -> Node:
        """The node :meth:`to_json` wrote."""
        data = json.loads(text)
        return cls(
            id=data["id"], service=data["service"], host=data["host"], version=data["version"],
            started_at=datetime.fromisoformat(data["started_at"]),
            heartbeat_at=datetime.fromisoformat(data["heartbeat_at"]), meta=dict(data.get("meta", {})),
        )


@runtime_checkable
class Supervisor(Protocol):
    """Leases and a node registry."""

    async def open(self) -> None:
        """Connect."""

    async def close(self) -> None:
        """Release this process's leases and disconnect."""

    async def acquire(self, key: str, *, owner: str, ttl: float) -> Lease | None:
        """Take ``key`` for ``ttl`` seconds if free or expired; ``None`` if someone holds it."""

    async def renew(self, lease: Lease, *, ttl: float) -> Lease | None:
        """Extend a lease still held; ``None`` if it was lost (expired and taken)."""

    async def release(self, lease: Lease) -> None:
        """Give the lease up; a lease already lost is ignored."""

    async def is_current(self, lease: Lease) -> bool:
        """Fencing check: is this lease (key, token) still the live one?"""

    async def register(self, node: Node) -> None:
        """Add or refresh a node in the registry (its heartbeat)."""

    async def nodes(self) -> list[Node]:
        """Nodes whose heartbeat is recent."""


@runtime_checkable
class LeaseListing(Protocol):
    """A supervisor that can list its live leases (capability ``leases``)."""

    async def leases(self) -> list[Lease]:
        """Every live lease (key, owner, token, until), by key."""


@runtime_checkable
class NodeHistory(Protocol):
    """A supervisor that remembers lapsed nodes too, so ``core nodes list`` can show them dead."""

    async def all_nodes(self) -> list[Node]:
        """Every node still remembered, live or lapsed."""


class SupervisorSpec:
    """Hook that registers supervisor adapters."""

    @hookspec
    def core_register_supervisors(self) -> list[AdapterRegistration[Supervisor]]:
        """Offer supervisor adapters.

        **When called:** once, when the host builds its adapter registry.

        :return: a list of :class:`~hookspecs.AdapterRegistration` whose factories build
            :class:`Supervisor` objects.

        **Example**::

            @hookimpl
            def core_register_supervisors():
                def make(url, options):
                    from my_plugin.locks import MySupervisor
                    return MySupervisor(url)
                return [AdapterRegistration(name="zk", schemes=("zk",), factory=make)]
        """
        raise NotImplementedError  # declared here, implemented by plugins
