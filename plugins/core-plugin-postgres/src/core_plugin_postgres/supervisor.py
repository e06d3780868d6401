"""The PostgreSQL supervisor: leases with a TTL and a fencing token, and the node registry.

A lease is a row ``(key, owner, token, expires_at)``. Acquiring is one statement: insert the
key, or take the row over if its lease has expired, incrementing ``token``. Every expiry is
computed with the database's clock, so the nodes' clocks may disagree. A released lease keeps
its row (``expires_at = -infinity``) so the token of a key never goes back: a holder that froze
past its TTL and wakes up finds ``is_current`` false as soon as anyone took the key after it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from hookspecs import Lease, Node, redacted_url

from core_plugin_postgres._pg import DISCONNECTED, create_pool, create_schema

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS core_leases (
    key        text PRIMARY KEY,
    owner      text NOT NULL,
    token      bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS core_nodes (
    id           text PRIMARY KEY,
    service      text NOT NULL,
    host         text NOT NULL,
    version      text NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    seen_at      timestamptz NOT NULL,
    meta         jsonb NOT NULL DEFAULT '{}'
);
"""

ACQUIRE = """
INSERT INTO core_leases AS l (key, owner, token, expires_at)
VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3))
ON CONFLICT (key) DO UPDATE
    SET owner = EXCLUDED.owner, token = l.token + 1, expires_at = EXCLUDED.expires_at
    WHERE l.expires_at <= clock_timestamp()
RETURNING key, owner, token, expires_at
"""

# Renewing is allowed while nobody took the key after us (the token is still ours), even a
# little after expiry: no other holder existed in between, so fencing still holds.
RENEW = """
UPDATE core_leases SET expires_at = clock_timestamp() + make_interval(secs => $4)
WHERE key = $1 AND owner = $2 AND token = $3 AND expires_at > '-infinity'
RETURNING key, owner, token, expires_at
"""

RELEASE = "UPDATE core_leases SET expires_at = '-infinity' WHERE key = $1 AND owner = $2 AND token = $3"

HOLDER = """
SELECT key, owner, token, expires_at FROM core_leases WHERE key = $1 AND expires_at > clock_timestamp()
"""

LEASES = """
SELECT key, owner, token, expires_at FROM core_leases WHERE expires_at > clock_timestamp() ORDER BY key
"""

IS_CURRENT = """
SELECT EXISTS (SELECT 1 FROM core_leases
               WHERE key = $1 AND owner = $2 AND token = $3 AND expires_at > clock_timestamp())
"""

REGISTER = """
INSERT INTO core_nodes AS n (id, service, host, version, started_at, heartbeat_at, seen_at, meta)
VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp(), $7::jsonb)
ON CONFLICT (id) DO UPDATE SET service = EXCLUDED.service, host = EXCLUDED.host,
    version = EXCLUDED.version, heartbeat_at = EXCLUDED.heartbeat_at,
    seen_at = EXCLUDED.seen_at, meta = EXCLUDED.meta
"""

NODES = """
SELECT id, service, host, version, started_at, heartbeat_at, meta::text AS meta FROM core_nodes
WHERE seen_at > clock_timestamp() - make_interval(secs => $1) ORDER BY service, id
"""

FORGET = "DELETE FROM core_nodes WHERE seen_at < clock_timestamp() - make_interval(secs => $1)"


class SupervisorUnavailable(ConnectionError):
    """PostgreSQL cannot be reached: no lease can be taken or checked now."""


class PostgresSupervisor:
    """Leases and a node registry in two small tables.

    :param url: ``postgresql://…``.
    :param node_ttl: a node whose last heartbeat is older than this (seconds) is not listed.
    :param pool_size: connections kept open.
    """

    def __init__(self, url: str, *, node_ttl: float = 10.0, pool_size: int = 2) -> None:
        self.url = url
        self.node_ttl = float(node_ttl)
        self.pool_size = int(pool_size)
        self._pool: asyncpg.Pool | None = None
        self._held: dict[str, Lease] = {}

    def __repr__(self) -> str:
        return f"PostgresSupervisor({redacted_url(self.url)!r})"

    async def open(self) -> None:
        """Connect and create the tables if missing."""
        try:
            self._pool = await create_pool(self.url, min_size=1, max_size=self.pool_size)
            await create_schema(self._pool, SCHEMA)
        except DISCONNECTED as exc:
            raise SupervisorUnavailable(f"supervisor {redacted_url(self.url)}: {exc}") from exc

    async def close(self) -> None:
        """Release the leases this object holds, then disconnect."""
        if self._pool is None:
            return
        for lease in list(self._held.values()):
            try:
                await self.release(lease)
            except SupervisorUnavailable:
                break  # they expire by themselves
        await self._pool.close()
        self._pool = None

    async def _run(self, call: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        """Run one statement; a pooled connection found dead (its backend terminated, the
        server restarted) is replaced and the statement tried once more on a fresh one."""
        if self._pool is None:
            raise RuntimeError("PostgresSupervisor used before open()")
        try:
            return await call(self._pool)
        except DISCONNECTED:
            await self._pool.expire_connections()
        try:
            return await call(self._pool)
        except DISCONNECTED as exc:
            raise SupervisorUnavailable(f"supervisor {redacted_url(self.url)}: {exc}") from exc

    async def acquire(self, key: str, *, owner: str, ttl: float) -> Lease | None:
        """Take ``key`` if free or expired (one statement); ``None`` while someone holds it."""
        row = await self._run(lambda pool: pool.fetchrow(ACQUIRE, key, owner, float(ttl)))
        if row is None:
            return None
        lease = _lease(row)
        self._held[key] = lease
        return lease

    async def renew(self, lease: Lease, *, ttl: float) -> Lease | None:
        """Extend a lease nobody took since; ``None`` if it was lost or released."""
        row = await self._run(
            lambda pool: pool.fetchrow(RENEW, lease.key, lease.owner, lease.token, float(ttl))
        )
        if row is None:
            if self._held.get(lease.key) == lease:
                del self._held[lease.key]
            return None
        renewed = _lease(row)
        self._held[lease.key] = renewed
        return renewed

    async def release(self, lease: Lease) -> None:
        """Give the lease up (its token stays, so the next holder gets a higher one)."""
        await self._run(lambda pool: pool.execute(RELEASE, lease.key, lease.owner, lease.token))
        held = self._held.get(lease.key)
        if held is not None and held.token == lease.token:
            del self._held[lease.key]

    async def is_current(self, lease: Lease) -> bool:
        """Fencing check against the database clock: same token, same owner, not expired."""
        current = await self._run(
            lambda pool: pool.fetchval(IS_CURRENT, lease.key, lease.owner, lease.token)
        )
        return bool(current)

    async def holder(self, key: str) -> Lease | None:
        """The live lease of ``key``, if any (to name who holds it in a message)."""
        row = await self._run(lambda pool: pool.fetchrow(HOLDER, key))
        return _lease(row) if row is not None else None

    async def leases(self) -> list[Lease]:
        """Every live lease (who holds what, until when, by the database clock), by key."""
        return [_lease(row) for row in await self._run(lambda pool: pool.fetch(LEASES))]

    async def register(self, node: Node) -> None:
        """Add or refresh a node; nodes silent for ten times ``node_ttl`` are forgotten."""

        async def upsert(pool: asyncpg.Pool) -> None:
            await pool.execute(
                REGISTER, node.id, node.service, node.host, node.version,
                node.started_at, node.heartbeat_at, json.dumps(node.meta),
            )
            await pool.execute(FORGET, self.node_ttl * 10)

        await self._run(upsert)

    async def nodes(self) -> list[Node]:
        """Nodes heard from within ``node_ttl`` seconds (by the database clock)."""
        rows = await self._run(lambda pool: pool.fetch(NODES, self.node_ttl))
        return [
            Node(
                id=r["id"], service=r["service"], host=r["host"], version=r["version"],
                started_at=r["started_at"], heartbeat_at=r["heartbeat_at"], meta=json.loads(r["meta"]),
            )
            for r in rows
        ]


def _lease(row: Any) -> Lease:
    return Lease(key=row["key"], owner=row["owner"], token=row["token"], expires_at=row["expires_at"])
