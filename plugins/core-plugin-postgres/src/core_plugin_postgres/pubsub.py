"""The PostgreSQL pub/sub: consumer groups in a table, LISTEN/NOTIFY as the wake-up.

Publishing inserts one row per (message, consumer group of the topic) and, in the same
statement, ``pg_notify('core_pubsub', topic)``: the notification carries only the topic, a
reference, never the body, so NOTIFY's 8000-byte limit does not bound message size. The
members of a group (:mod:`~core_plugin_postgres._subscription`) claim its rows; a group
exists from its first subscription on, so a member that was offline catches up from the
table, and nothing needs a notification to be delivered: a missed one costs at most
``poll_interval`` of latency.

Concurrent ``publish`` calls share one statement and one commit (the next batch forms while
one is written), and only that commit waits for the WAL flush (except on ``hint_topics``):
claims and acknowledgements commit asynchronously, since losing one to a server crash only
means a redelivery.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from hookspecs import JOBS_TOPIC, ConfigError, Message, PubSubUnavailable, redacted_url

from core_plugin_postgres._pg import DISCONNECTED, connect, create_pool, create_schema
from core_plugin_postgres._subscription import PostgresSubscription

__all__ = ["PostgresPubSub", "PostgresSubscription"]

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "core_pubsub"

SCHEMA = """
CREATE TABLE IF NOT EXISTS core_pubsub_groups (
    topic      text NOT NULL,
    grp        text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, grp)
);
CREATE TABLE IF NOT EXISTS core_pubsub_messages (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      text NOT NULL,
    grp        text NOT NULL,
    body       bytea NOT NULL,
    attributes jsonb NOT NULL,
    key        text,
    visible_at timestamptz NOT NULL DEFAULT '-infinity',
    attempts   integer NOT NULL DEFAULT 0
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX IF NOT EXISTS core_pubsub_messages_claim ON core_pubsub_messages (topic, grp, id);
"""

JOIN = "INSERT INTO core_pubsub_groups (topic, grp) VALUES ($1, $2) ON CONFLICT DO NOTHING"

PUBLISH = """
WITH inserted AS (
    INSERT INTO core_pubsub_messages (topic, grp, body, attributes, key)
    SELECT m.topic, g.grp, m.body, m.attributes::jsonb, m.key
    FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[])
        WITH ORDINALITY AS m(topic, body, attributes, key, n)
    JOIN core_pubsub_groups AS g ON g.topic = m.topic
    ORDER BY m.n, g.grp
    RETURNING topic
)
SELECT pg_notify($5, t.topic) FROM (SELECT DISTINCT topic FROM inserted) AS t
"""

class PostgresPubSub:
    """:class:`~hookspecs.PubSub` on PostgreSQL (``postgresql://…``).

    :param ack_timeout: seconds a delivered, unsettled message stays hidden from the group.
    :param prefetch: rows one member claims at a time.
    :param poll_interval: longest wait without a notification before looking again.
    :param pool_size: connections for publishing and claiming (plus one for LISTEN).
    :param hint_topics: topics whose messages only point at state kept durably elsewhere, so
        their publishes commit without waiting for the WAL flush. The default is the realtime
        jobs topic: its jobs are in the store, and the schedule delivers any whose message is
        lost. Other topics' publishes are durable once ``publish`` returns.
    """

    def __init__(
        self,
        url: str,
        *,
        ack_timeout: float = 30.0,
        prefetch: int = 100,
        poll_interval: float = 1.0,
        pool_size: int = 4,
        hint_topics: Sequence[str] = (JOBS_TOPIC,),
    ) -> None:
        self.url = url
        self.ack_timeout = float(ack_timeout)
        self.prefetch = int(prefetch)
        self.poll_interval = float(poll_interval)
        self.pool_size = int(pool_size)
        self.hint_topics = frozenset(hint_topics)
        if not 0 < self.poll_interval < self.ack_timeout or self.prefetch < 1 or self.pool_size < 1:
            raise ConfigError(
                "options of the pubsub", "poll_interval/ack_timeout/prefetch/pool_size",
                (self.poll_interval, self.ack_timeout, self.prefetch, self.pool_size),
                "0 < poll_interval < ack_timeout (seconds: acknowledgements are written at least "
                "every poll_interval), prefetch >= 1, pool_size >= 1",
            )
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._listening: asyncio.Task[None] | None = None
        self._subscriptions: set[PostgresSubscription] = set()
        self._outbox: list[tuple[str, Sequence[Message], asyncio.Future[None]]] = []
        self._sending: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"PostgresPubSub({redacted_url(self.url)!r})"

    async def open(self) -> None:
        """Connect, create the tables if missing, and LISTEN."""
        try:
            self._pool = await create_pool(
                self.url, min_size=1, max_size=self.pool_size, settings={"synchronous_commit": "off"}
            )
            await create_schema(self._pool, SCHEMA)
        except DISCONNECTED as exc:
            raise PubSubUnavailable(f"pubsub {redacted_url(self.url)}: {exc}") from exc
        self._listening = asyncio.create_task(self._listen(), name="core-pubsub-listen")

    async def close(self) -> None:
        """Leave every group (settling what can be) and disconnect."""
        for subscription in list(self._subscriptions):
            await subscription.close()
        if self._sending is not None:  # publishes in flight complete (or fail) first
            await asyncio.gather(self._sending, return_exceptions=True)
            self._sending = None
        if self._listening is not None:
            self._listening.cancel()
            await asyncio.gather(self._listening, return_exceptions=True)
            self._listening = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _run(self, call: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        if self._pool is None:
            raise PubSubUnavailable(f"pubsub {redacted_url(self.url)} is not open; call open() first")
        try:
            return await call(self._pool)
        except DISCONNECTED as exc:
            raise PubSubUnavailable(f"pubsub {redacted_url(self.url)}: {exc}") from exc

    async def publish(self, topic: str, messages: Sequence[Message]) -> None:
        """Queue the messages for the next shared statement; return once it is committed."""
        if not messages:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.append((topic, messages, done))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send(), name="core-pubsub-publish")
        await done

    async def _send(self) -> None:
        """Write what waits in the outbox, one batch at a time, until it is empty."""
        while self._outbox:
            batch, self._outbox = self._outbox, []
            rows = [(topic, message) for topic, messages, _ in batch for message in messages]
            write = functools.partial(_write, rows=rows, durable=any(t not in self.hint_topics for t, _ in rows))
            try:
                try:
                    await self._run(write)
                except PubSubUnavailable:
                    # A pooled connection the server closed is only noticed when used: try
                    # once more on a fresh one (a duplicate is possible, as at least once allows).
                    await self._run(write)
            except BaseException as exc:  # every waiting publisher gets the failure
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def subscribe(self, topic: str, *, group: str) -> PostgresSubscription:
        """Create ``group`` on ``topic`` if new (it gets messages from now on) and join it."""
        await self._run(lambda pool: pool.execute(JOIN, topic, group))
        subscription = PostgresSubscription(self, topic, group)
        self._subscriptions.add(subscription)
        return subscription

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, topic: str) -> None:
        for subscription in self._subscriptions:
            if subscription.topic == topic:
                subscription._notify()

    async def _listen(self) -> None:
        """Hold a LISTEN connection, reconnecting after loss (members poll meanwhile)."""
        while True:
            lost = asyncio.Event()
            try:
                conn = await connect(self.url)
            except DISCONNECTED as exc:
                log.warning("pubsub %s: LISTEN connection failed (%s)", redacted_url(self.url), exc)
                await asyncio.sleep(self.poll_interval)
                continue
            try:
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                for subscription in self._subscriptions:
                    subscription._notify()  # look again: notifications may have been missed
                await lost.wait()
            except DISCONNECTED as exc:
                log.warning("pubsub %s: LISTEN connection lost (%s)", redacted_url(self.url), exc)
            finally:
                conn.terminate()


async def _write(pool: asyncpg.Pool, *, rows: list[tuple[str, Message]], durable: bool) -> None:
    """Insert ``(topic, message)`` rows for every group and notify, in one commit; ``durable``:
    the commit waits for the WAL flush (accepted then means kept)."""
    args = (
        [topic for topic, _ in rows],
        [bytes(m.body) for _, m in rows],
        [json.dumps(dict(m.attributes)) for _, m in rows],
        [m.key for _, m in rows],
        CHANNEL,
    )
    async with pool.acquire() as conn:
        if not durable:  # the session's default: no wait
            await conn.execute(PUBLISH, *args)
            return
        async with conn.transaction():
            await conn.execute("SET LOCAL synchronous_commit = on")
            await conn.execute(PUBLISH, *args)
