"""The in-process supervisor (``local://``): leases and a node registry in memory.

For a single-process deployment and for tests. It keeps the supervisor's contract: a lease
is exclusive until released or past its TTL, its fencing token is strictly greater than every
token given before for that key, a stale lease fails :meth:`LocalSupervisor.is_current`, and
:meth:`LocalSupervisor.nodes` lists nodes whose heartbeat is recent. Supervisors with the same
URL in one process share their state, as two clients of one server would.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from core.errors import CoreError
from hookspecs import Lease, Node

DEFAULT_NODE_TTL = 30.0


@dataclass(slots=True)
class _State:
    """What one ``local://name`` holds: live leases, the last token per key, the nodes."""

    leases: dict[str, Lease] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_STATES: dict[str, _State] = {}
_STATES_LOCK = threading.Lock()


def _state(name: str) -> _State:
    with _STATES_LOCK:
        return _STATES.setdefault(name, _State())


def _now() -> datetime:
    return datetime.now(UTC)


class LocalSupervisor:
    """In-process :class:`~hookspecs.Supervisor` (``local://`` or ``local://name``).

    :param node_ttl: seconds after its last heartbeat that a node is still listed.
    """

    def __init__(self, url: str = "local://", **options: Any) -> None:
        unknown = sorted(set(options) - {"node_ttl"})
        if unknown:
            raise CoreError(f"local supervisor: unknown option(s) {unknown}", hint="the known option is node_ttl")
        parts = urlsplit(url)
        self.name = parts.netloc + parts.path
        self.node_ttl = float(options.get("node_ttl", DEFAULT_NODE_TTL))
        if self.node_ttl <= 0:
            raise CoreError(f"local supervisor: node_ttl={self.node_ttl}", hint="node_ttl must be positive")
        self._state = _state(self.name)
        self._held: set[tuple[str, int]] = set()

    async def open(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Release the leases this supervisor acquired and still holds."""
        state = self._state
        with state.lock:
            for key, token in self._held:
                live = state.leases.get(key)
                if live is not None and live.token == token:
                    del state.leases[key]
            self._held.clear()

    def _live(self, key: str, now: datetime) -> Lease | None:
        lease = self._state.leases.get(key)
        return lease if lease is not None and lease.expires_at > now else None

    async def acquire(self, key: str, *, owner: str, ttl: float) -> Lease | None:
        now = _now()
        state = self._state
        with state.lock:
            if self._live(key, now) is not None:
                return None
            token = state.tokens.get(key, 0) + 1
            state.tokens[key] = token
            lease = Lease(key=key, owner=owner, token=token, expires_at=now + timedelta(seconds=ttl))
            state.leases[key] = lease
            self._held.add((key, token))
            return lease

    async def renew(self, lease: Lease, *, ttl: float) -> Lease | None:
        now = _now()
        state = self._state
        with state.lock:
            live = self._live(lease.key, now)
            if live is None or live.token != lease.token:
                return None
            renewed = dataclasses.replace(live, expires_at=now + timedelta(seconds=ttl))
            state.leases[lease.key] = renewed
            return renewed

    async def release(self, lease: Lease) -> None:
        state = self._state
        with state.lock:
            live = state.leases.get(lease.key)
            if live is not None and live.token == lease.token:
                del state.leases[lease.key]
            self._held.discard((lease.key, lease.token))

    async def is_current(self, lease: Lease) -> bool:
        with self._state.lock:
            live = self._live(lease.key, _now())
            return live is not None and live.token == lease.token

    async def holder(self, key: str) -> Lease | None:
        """The live lease of ``key``, if any (to name who holds it in a message)."""
        with self._state.lock:
            return self._live(key, _now())

    async def leases(self) -> list[Lease]:
        """Every live lease (who holds what, until when), by key."""
        now = _now()
        with self._state.lock:
            return sorted((lease for key in self._state.leases if (lease := self._live(key, now))),
                          key=lambda lease: lease.key)

    async def register(self, node: Node) -> None:
        with self._state.lock:
            self._state.nodes[node.id] = dataclasses.replace(node, meta=dict(node.meta))

    async def nodes(self) -> list[Node]:
        since = _now() - timedelta(seconds=self.node_ttl)
        with self._state.lock:
            recent = [n for n in self._state.nodes.values() if n.heartbeat_at >= since]
        return sorted((dataclasses.replace(n, meta=dict(n.meta)) for n in recent), key=lambda n: n.id)
