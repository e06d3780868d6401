"""The Consul supervisor: a lease is a Consul session with a TTL holding a KV lock.

Acquiring creates a session (TTL, ``behavior=release``, no lock delay) and takes the key
``<prefix>leases/<key>`` with ``?acquire=<session>``. The fencing token is the key's
``ModifyIndex`` right after the acquire: a Raft index, so it only grows, and every hand-over
(acquire, release, session expiry) modifies the key. ``is_current`` asks Consul whether the key
is still locked at that index by that owner. Consul expires a session between TTL and 2xTTL by
its leader's clock; a session keeps the TTL it was created with, and Consul's minimum is 10 s.
``leases`` lists the lock keys in one recursive read: a key with a session is held (Consul unlocks
it when the session ends); Consul does not say when a session was last renewed, so its
``expires_at`` is now plus the session TTL, as ``acquire`` and ``renew`` estimate it.
Nodes live under ``<prefix>nodes/<id>``, each locked by a session of TTL ``node_ttl`` with
``behavior=delete``: a node that stops heartbeating disappears by Consul's clock, not ours.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import consul
import consul.aio
from hookspecs import ConfigError, Lease, Node

#: Consul's bounds on a session TTL (seconds).
MIN_TTL, MAX_TTL = 10, 86400


class SupervisorUnavailable(ConnectionError):
    """Consul cannot be reached: no lease can be taken or checked now."""


def parse_url(url: str) -> tuple[str, int]:
    """``consul://host:port`` -> (host, port); a clear error for anything else."""
    parts = urlsplit(url)
    try:
        port = parts.port or 8500
    except ValueError:
        port = -1
    if parts.scheme != "consul" or not parts.hostname or port < 1 or parts.path not in ("", "/"):
        raise ConfigError("supervisor", "url", url, "consul://HOST:PORT, e.g. consul://127.0.0.1:8500")
    return parts.hostname, port


def _seconds(ttl: float) -> int:
    return min(MAX_TTL, max(MIN_TTL, math.ceil(ttl)))


class ConsulSupervisor:
    """Leases and a node registry in Consul's KV store.

    :param url: ``consul://host:port`` (the agent's HTTP API).
    :param node_ttl: seconds a node stays listed after its last heartbeat (10 to 86400).
    :param prefix: KV folder of the leases and nodes.
    :param timeout: seconds one HTTP call may take.
    """

    def __init__(self, url: str, *, node_ttl: float = 10.0, prefix: str = "core/", timeout: float = 10.0) -> None:
        self.url = url
        self.host, self.port = parse_url(url)
        self.node_ttl = _seconds(node_ttl)
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.timeout = float(timeout)
        self._client: consul.aio.Consul | None = None
        self._held: dict[str, tuple[Lease, str]] = {}
        self._node_sessions: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"ConsulSupervisor('consul://{self.host}:{self.port}')"

    async def open(self) -> None:
        """Connect and check that the agent answers."""
        self._client = consul.aio.Consul(host=self.host, port=self.port, connections_timeout=self.timeout)
        try:
            await self._call(self._api.status.leader())
        except SupervisorUnavailable:
            await self._client.close()
            self._client = None
            raise

    async def close(self) -> None:
        """Release the leases this object holds, then disconnect."""
        if self._client is None:
            return
        for lease, _ in list(self._held.values()):
            try:
                await self.release(lease)
            except SupervisorUnavailable:
                break  # their sessions expire by themselves
        await self._client.close()
        self._client = None

    @property
    def _api(self) -> consul.aio.Consul:
        if self._client is None:
            raise RuntimeError("ConsulSupervisor used before open()")
        return self._client

    async def _call(self, call: Any) -> Any:
        try:
            return await call
        except (aiohttp.ClientError, TimeoutError, OSError, consul.ConsulException) as exc:
            raise SupervisorUnavailable(f"supervisor consul://{self.host}:{self.port}: {exc}") from exc

    def _key(self, key: str) -> str:
        return f"{self.prefix}leases/{key}"

    async def _entry(self, key: str) -> dict[str, Any] | None:
        _, entry = await self._call(self._api.kv.get(self._key(key), consistency="consistent"))
        return entry  # type: ignore[no-any-return]

    async def acquire(self, key: str, *, owner: str, ttl: float) -> Lease | None:
        """Take ``key`` with a new session of TTL ``ttl`` (at least 10 s); ``None`` while held."""
        seconds = _seconds(ttl)
        session = await self._call(
            self._api.session.create(
                name=f"core lease {key} ({owner})",
                ttl=seconds,
                lock_delay=0,
                behavior="release",
                checks=[],
            )
        )
        value = json.dumps({"owner": owner, "ttl": seconds})
        try:
            taken = await self._call(self._api.kv.put(self._key(key), value, acquire=session))
            entry = await self._entry(key) if taken else None
        except SupervisorUnavailable:
            await self._destroy(session)
            raise
        if not taken or entry is None or entry.get("Session") != session:
            await self._destroy(session)
            return None
        lease = Lease(key=key, owner=owner, token=int(entry["ModifyIndex"]), expires_at=_after(seconds))
        self._held[key] = (lease, session)
        return lease

    async def _destroy(self, session: str) -> None:
        try:
            await self._call(self._api.session.destroy(session))
        except SupervisorUnavailable:
            pass  # it expires by itself

    async def _session_of(self, lease: Lease) -> tuple[str, int] | None:
        """The session and TTL holding ``lease`` if it is still the live one."""
        entry = await self._entry(lease.key)
        if entry is None or not entry.get("Session") or int(entry["ModifyIndex"]) != lease.token:
            return None
        value = json.loads(entry.get("Value") or b"{}")
        if value.get("owner") != lease.owner:
            return None
        return str(entry["Session"]), int(value.get("ttl", MIN_TTL))

    async def renew(self, lease: Lease, *, ttl: float) -> Lease | None:
        """Renew the lease's session; ``None`` if it was lost. The session keeps the TTL it was
        created with (Consul cannot change it), which the returned ``expires_at`` reflects."""
        found = await self._session_of(lease)
        if found is None or await self._call(self._api.session.renew(found[0])) is None:
            if (held := self._held.get(lease.key)) and held[0].token == lease.token:
                del self._held[lease.key]
            return None
        renewed = Lease(key=lease.key, owner=lease.owner, token=lease.token, expires_at=_after(found[1]))
        self._held[lease.key] = (renewed, found[0])
        return renewed

    async def release(self, lease: Lease) -> None:
        """Destroy the lease's session (Consul unlocks the key); a lost lease is ignored."""
        found = await self._session_of(lease)
        if found is not None:
            await self._destroy(found[0])
        held = self._held.get(lease.key)
        if held is not None and held[0].token == lease.token:
            if found is None:
                await self._destroy(held[1])
            del self._held[lease.key]

    async def is_current(self, lease: Lease) -> bool:
        """Fencing check: the key is still locked at index ``token`` by ``owner``."""
        return await self._session_of(lease) is not None

    async def leases(self) -> list[Lease]:
        """Every live lease, by key, from one recursive read of the lock keys: the token is the
        key's ``ModifyIndex`` (no renewal modifies it), ``expires_at`` now plus the session TTL."""
        folder = self._key("")
        _, entries = await self._call(self._api.kv.get(folder, recurse=True, consistency="consistent"))
        found = []
        for entry in entries or ():
            if not entry.get("Session"):
                continue  # released or expired: unlocked
            value = json.loads(entry.get("Value") or b"{}")
            found.append(
                Lease(
                    key=entry["Key"][len(folder):],
                    owner=value.get("owner", ""),
                    token=int(entry["ModifyIndex"]),
                    expires_at=_after(int(value.get("ttl", MIN_TTL))),
                )
            )
        return sorted(found, key=lambda lease: lease.key)

    async def register(self, node: Node) -> None:
        """Write the node under its own session (TTL ``node_ttl``), renewing it: a heartbeat."""
        key = f"{self.prefix}nodes/{node.id}"
        value = node.to_json()
        session = self._node_sessions.get(node.id)
        if session is not None and await self._call(self._api.session.renew(session)) is not None:
            await self._call(self._api.kv.put(key, value))
            return
        session = await self._call(
            self._api.session.create(
                name=f"core node {node.id}",
                ttl=self.node_ttl,
                lock_delay=0,
                behavior="delete",
                checks=[],
            )
        )
        self._node_sessions[node.id] = session
        if not await self._call(self._api.kv.put(key, value, acquire=session)):
            await self._call(self._api.kv.put(key, value))  # still locked by a session of an earlier run

    async def nodes(self) -> list[Node]:
        """Nodes whose session is alive (Consul deletes the key when it expires)."""
        _, entries = await self._call(self._api.kv.get(f"{self.prefix}nodes/", recurse=True))
        found = []
        for entry in entries or ():
            found.append(Node.from_json(entry.get("Value") or b"{}"))
        return sorted(found, key=lambda n: (n.service, n.id))


def _after(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
