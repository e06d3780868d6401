"""The etcd supervisor: a lease is an etcd lease (TTL, kept alive by ``renew``) attached to a key.

Acquiring grants an etcd lease and, in one transaction, creates ``<prefix>leases/<key>`` under
it if the key does not exist. The fencing token is the key's ``create_revision``: the store's
revision counter only grows, and the key is created anew at every hand-over (etcd deletes it
when its lease expires or is revoked). ``is_current`` asks etcd whether the key still exists
with that create revision and owner. Expiry is decided by the etcd leader's clock; a lease keeps
the TTL it was granted with (a keep-alive resets it to that TTL). ``leases`` reads the keys in one
range and asks each key's etcd lease its remaining TTL (etcd has no batch call for that).
Nodes live under ``<prefix>nodes/<id>``, each attached to a lease of TTL ``node_ttl``.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aetcd
import aetcd.exceptions
from hookspecs import ConfigError, Lease, Node


class SupervisorUnavailable(ConnectionError):
    """etcd cannot be reached: no lease can be taken or checked now."""


def parse_url(url: str) -> tuple[str, int]:
    """``etcd://host:port`` -> (host, port); a clear error for anything else."""
    parts = urlsplit(url)
    try:
        port = parts.port or 2379
    except ValueError:
        port = -1
    if parts.scheme != "etcd" or not parts.hostname or port < 1 or parts.path not in ("", "/"):
        raise ConfigError("supervisor", "url", url, "etcd://HOST:PORT, e.g. etcd://127.0.0.1:2379")
    return parts.hostname, port


class EtcdSupervisor:
    """Leases and a node registry in etcd.

    :param url: ``etcd://host:port`` (a client URL of the cluster).
    :param node_ttl: seconds a node stays listed after its last heartbeat.
    :param prefix: key prefix of the leases and nodes.
    :param timeout: seconds one gRPC call may take.
    """

    def __init__(self, url: str, *, node_ttl: float = 10.0, prefix: str = "core/", timeout: float = 10.0) -> None:
        self.url = url
        self.host, self.port = parse_url(url)
        self.node_ttl = max(2, math.ceil(node_ttl))
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.timeout = float(timeout)
        self._client: aetcd.Client | None = None
        self._held: dict[str, tuple[Lease, int]] = {}
        self._node_leases: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"EtcdSupervisor('etcd://{self.host}:{self.port}')"

    async def open(self) -> None:
        """Connect and check that the cluster answers."""
        self._client = aetcd.Client(host=self.host, port=self.port, timeout=math.ceil(self.timeout))
        try:
            await self._call(self._client.status())
        except SupervisorUnavailable:
            await self._client.close()
            self._client = None
            raise

    async def close(self) -> None:
        """Revoke the leases this object holds, then disconnect."""
        if self._client is None:
            return
        for lease, _ in list(self._held.values()):
            try:
                await self.release(lease)
            except SupervisorUnavailable:
                break  # they expire by themselves
        await self._client.close()
        self._client = None

    @property
    def _api(self) -> aetcd.Client:
        if self._client is None:
            raise RuntimeError("EtcdSupervisor used before open()")
        return self._client

    async def _call(self, call: Any) -> Any:
        try:
            return await call
        except (aetcd.exceptions.ClientError, TimeoutError, OSError) as exc:
            raise SupervisorUnavailable(f"supervisor etcd://{self.host}:{self.port}: {exc}") from exc

    def _key(self, key: str) -> bytes:
        return f"{self.prefix}leases/{key}".encode()

    async def acquire(self, key: str, *, owner: str, ttl: float) -> Lease | None:
        """Create ``key`` under a new etcd lease of ``ttl`` seconds; ``None`` while it exists."""
        granted = await self._call(self._api.lease(max(1, math.ceil(ttl))))
        name, api = self._key(key), self._api
        value = json.dumps({"owner": owner, "ttl": granted.ttl}).encode()
        try:
            created, replies = await self._call(
                api.transaction(
                    compare=[api.transactions.create(name) == 0],
                    success=[api.transactions.put(name, value, lease=granted.id), api.transactions.get(name)],
                    failure=[],
                )
            )
        except SupervisorUnavailable:
            await self._revoke(granted.id)
            raise
        if not created:
            await self._revoke(granted.id)
            return None
        _, got = replies[1][0]
        lease = Lease(key=key, owner=owner, token=int(got.create_revision), expires_at=_after(granted.ttl))
        self._held[key] = (lease, granted.id)
        return lease

    async def _revoke(self, lease_id: int) -> None:
        try:
            await self._call(self._api.revoke_lease(lease_id))
        except SupervisorUnavailable:
            pass  # it expires by itself

    async def _lease_of(self, lease: Lease) -> int | None:
        """The etcd lease id holding ``lease`` if it is still the live one."""
        got = await self._call(self._api.get(self._key(lease.key)))
        if got is None or int(got.create_revision) != lease.token:
            return None
        if json.loads(got.value or b"{}").get("owner") != lease.owner:
            return None
        return int(got.lease)

    async def renew(self, lease: Lease, *, ttl: float) -> Lease | None:
        """Send one keep-alive; ``None`` if the lease was lost. etcd resets the lease to the TTL
        it was granted with, which the returned ``expires_at`` reflects."""
        lease_id = await self._lease_of(lease)
        reply = await self._call(self._api.refresh_lease(lease_id)) if lease_id else None
        if reply is None or reply.TTL <= 0:
            if (held := self._held.get(lease.key)) and held[0].token == lease.token:
                del self._held[lease.key]
            return None
        renewed = Lease(key=lease.key, owner=lease.owner, token=lease.token, expires_at=_after(reply.TTL))
        self._held[lease.key] = (renewed, int(reply.ID))
        return renewed

    async def release(self, lease: Lease) -> None:
        """Revoke the lease (etcd deletes the key); a lost lease is ignored."""
        lease_id = await self._lease_of(lease)
        if lease_id:
            await self._revoke(lease_id)
        if (held := self._held.get(lease.key)) and held[0].token == lease.token:
            del self._held[lease.key]

    async def is_current(self, lease: Lease) -> bool:
        """Fencing check: the key still exists with create revision ``token`` and ``owner``."""
        return await self._lease_of(lease) is not None

    async def leases(self) -> list[Lease]:
        """Every live lease, by key: one range over the keys, then each one's remaining TTL
        (asked concurrently); ``expires_at`` is now plus that TTL, by etcd's clock."""
        folder = f"{self.prefix}leases/"
        entries = list(await self._call(self._api.get_prefix(folder.encode())))
        replies = await asyncio.gather(
            *(self._call(self._api.get_lease_info(int(entry.lease), keys=False)) for entry in entries)
        )
        found = []
        for entry, reply in zip(entries, replies, strict=True):
            if reply.TTL <= 0:
                continue  # expired since the range: etcd is deleting the key
            owner = json.loads(entry.value or b"{}").get("owner", "")
            key = entry.key.decode()[len(folder):]
            found.append(Lease(key=key, owner=owner, token=int(entry.create_revision), expires_at=_after(reply.TTL)))
        return sorted(found, key=lambda lease: lease.key)

    async def register(self, node: Node) -> None:
        """Write the node under its own etcd lease (TTL ``node_ttl``), kept alive: a heartbeat."""
        value = node.to_json().encode()
        lease_id = self._node_leases.get(node.id)
        reply = await self._call(self._api.refresh_lease(lease_id)) if lease_id else None
        if reply is None or reply.TTL <= 0:
            lease_id = (await self._call(self._api.lease(self.node_ttl))).id
            self._node_leases[node.id] = lease_id
        await self._call(self._api.put(f"{self.prefix}nodes/{node.id}".encode(), value, lease=lease_id))

    async def nodes(self) -> list[Node]:
        """Nodes whose lease is alive (etcd deletes the key when it expires)."""
        found = []
        for entry in await self._call(self._api.get_prefix(f"{self.prefix}nodes/".encode())):
            found.append(Node.from_json(entry.value))
        return sorted(found, key=lambda n: (n.service, n.id))


def _after(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
