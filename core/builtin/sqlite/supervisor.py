"""The SQLite supervisor: leases with fencing tokens and the node registry in the store's file.

Every process on one machine that opens the same SQLite file coordinates through two small
tables, ``core_leases`` and ``core_nodes``. Acquiring is one ``BEGIN IMMEDIATE`` transaction
(SQLite's write lock makes it atomic across processes): take the key if it is free or expired,
incrementing its token. A released lease keeps its row (``expires_at = -1``) so a key's token
never goes back. Times are the machine's wall clock, shared by every process on it.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import make_url

from core.builtin.sqlite.connections import database_path
from core.errors import CoreError
from hookspecs import Lease, Node

SCHEMA = """
CREATE TABLE IF NOT EXISTS core_leases (
    key        TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    token      INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS core_nodes (
    id           TEXT PRIMARY KEY,
    service      TEXT NOT NULL,
    host         TEXT NOT NULL,
    version      TEXT NOT NULL,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    seen_at      REAL NOT NULL,
    meta         TEXT NOT NULL DEFAULT '{}'
);
"""

LEASE_COLUMNS = "key, owner, token, expires_at"


def _stamp(moment: datetime) -> float:
    return moment.timestamp()


def _moment(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def _lease(row: tuple[Any, ...]) -> Lease:
    return Lease(key=row[0], owner=row[1], token=int(row[2]), expires_at=_moment(row[3]))


def _node(row: tuple[Any, ...]) -> Node:
    return Node(
        id=row[0],
        service=row[1],
        host=row[2],
        version=row[3],
        started_at=_moment(row[4]),
        heartbeat_at=_moment(row[5]),
        meta=json.loads(row[6]),
    )


class SQLiteSupervisor:
    """:class:`~hookspecs.Supervisor` on a SQLite file (``sqlite:///.core/core.db``).

    :param url: the SQLite URL, usually the store's: leases then live beside the data.
    :param node_ttl: seconds after its last heartbeat that a node is still listed as live.
    :param busy_timeout_ms: how long a statement waits for another process's write lock.
    """

    def __init__(self, url: str, *, node_ttl: float = 10.0, busy_timeout_ms: int = 5000) -> None:
        path = database_path(make_url(url))
        self.url = url
        self.node_ttl = float(node_ttl)
        self.busy_timeout_ms = int(busy_timeout_ms)
        # An in-memory store has no file: processes cannot share it, instances in one process do.
        self._target = str(path) if path is not None else f"file:core-supervisor-{url}?mode=memory&cache=shared"
        self._memory = path is None
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._held: dict[str, Lease] = {}

    def __repr__(self) -> str:
        return f"SQLiteSupervisor({self.url!r})"

    async def open(self) -> None:
        """Open the file (creating its directory) and the two tables."""
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        if not self._memory:
            from pathlib import Path

            Path(self._target).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                self._target,
                timeout=self.busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
                uri=self._memory,
            )
            if not self._memory:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise CoreError(
                f"the SQLite supervisor cannot open {self._target}: {exc}",
                hint="point 'supervisor' (or the store it follows) at a writable SQLite file",
            ) from exc
        self._conn = conn

    async def close(self) -> None:
        """Release the leases this object holds, then close the file."""
        if self._conn is None:
            return
        for lease in list(self._held.values()):
            await self.release(lease)
        conn, self._conn = self._conn, None
        await asyncio.to_thread(conn.close)

    async def _call(self, write: bool, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run ``sql`` in its own transaction (``BEGIN IMMEDIATE`` for a write) on a thread."""

        def run() -> list[tuple[Any, ...]]:
            if self._conn is None:
                raise RuntimeError("SQLiteSupervisor used before open()")
            with self._lock:
                conn = self._conn
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    rows = conn.execute(sql, args).fetchall()
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return rows

        return await asyncio.to_thread(run)

    async def acquire(self, key: str, *, owner: str, ttl: float) -> Lease | None:
        """Take ``key`` if free or expired (one write transaction); ``None`` while held."""
        now = time.time()
        rows = await self._call(
            True,
            f"INSERT INTO core_leases AS l ({LEASE_COLUMNS}) VALUES (?, ?, 1, ?) "
            "ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, token = l.token + 1, "
            f"expires_at = excluded.expires_at WHERE l.expires_at <= ? RETURNING {LEASE_COLUMNS}",
            key,
            owner,
            now + ttl,
            now,
        )
        if not rows:
            return None
        lease = _lease(rows[0])
        self._held[key] = lease
        return lease

    async def renew(self, lease: Lease, *, ttl: float) -> Lease | None:
        """Extend a lease nobody took since (even a little past expiry); ``None`` if lost."""
        rows = await self._call(
            True,
            f"UPDATE core_leases SET expires_at = ? WHERE key = ? AND owner = ? AND token = ? "
            f"AND expires_at >= 0 RETURNING {LEASE_COLUMNS}",
            time.time() + ttl,
            lease.key,
            lease.owner,
            lease.token,
        )
        if not rows:
            if self._held.get(lease.key) == lease:
                del self._held[lease.key]
            return None
        renewed = _lease(rows[0])
        self._held[lease.key] = renewed
        return renewed

    async def release(self, lease: Lease) -> None:
        """Give the lease up (its token stays, so the next holder gets a higher one)."""
        await self._call(
            True,
            "UPDATE core_leases SET expires_at = -1 WHERE key = ? AND owner = ? AND token = ?",
            lease.key,
            lease.owner,
            lease.token,
        )
        held = self._held.get(lease.key)
        if held is not None and held.token == lease.token:
            del self._held[lease.key]

    async def is_current(self, lease: Lease) -> bool:
        """Fencing check: same key, owner and token, and not expired."""
        rows = await self._call(
            False,
            "SELECT 1 FROM core_leases WHERE key = ? AND owner = ? AND token = ? AND expires_at > ?",
            lease.key,
            lease.owner,
            lease.token,
            time.time(),
        )
        return bool(rows)

    async def holder(self, key: str) -> Lease | None:
        """The live lease of ``key``, if any (to name who holds it in a message)."""
        rows = await self._call(
            False, f"SELECT {LEASE_COLUMNS} FROM core_leases WHERE key = ? AND expires_at > ?", key, time.time()
        )
        return _lease(rows[0]) if rows else None

    async def leases(self) -> list[Lease]:
        """Every live lease (who holds what, until when), by key."""
        rows = await self._call(
            False, f"SELECT {LEASE_COLUMNS} FROM core_leases WHERE expires_at > ? ORDER BY key", time.time()
        )
        return [_lease(row) for row in rows]

    async def register(self, node: Node) -> None:
        """Add or refresh a node; nodes silent for ten times ``node_ttl`` are forgotten."""
        now = time.time()
        await self._call(
            True,
            "INSERT INTO core_nodes AS n (id, service, host, version, started_at, heartbeat_at, seen_at, meta) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET service = excluded.service, "
            "host = excluded.host, version = excluded.version, heartbeat_at = excluded.heartbeat_at, "
            "seen_at = excluded.seen_at, meta = excluded.meta",
            node.id,
            node.service,
            node.host,
            node.version,
            _stamp(node.started_at),
            _stamp(node.heartbeat_at),
            now,
            json.dumps(node.meta),
        )
        await self._call(True, "DELETE FROM core_nodes WHERE seen_at < ?", now - self.node_ttl * 10)

    async def forget(self, node_id: str) -> None:
        """Drop a node that stopped cleanly (it will not heartbeat again)."""
        await self._call(True, "DELETE FROM core_nodes WHERE id = ?", node_id)

    async def nodes(self) -> list[Node]:
        """Nodes heard from within ``node_ttl`` seconds."""
        return [node for node in await self.all_nodes() if _stamp(node.heartbeat_at) > time.time() - self.node_ttl]

    async def all_nodes(self) -> list[Node]:
        """Every node still remembered, live or lapsed (``core nodes list`` marks the lapsed dead)."""
        rows = await self._call(
            False,
            "SELECT id, service, host, version, started_at, heartbeat_at, meta FROM core_nodes ORDER BY service, id",
        )
        return [_node(row) for row in rows]
