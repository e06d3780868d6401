"""Members of the PostgreSQL pub/sub's consumer groups: claim, deliver, settle.

A member claims a batch of its group's rows with ``FOR UPDATE SKIP LOCKED`` (each row to one
member) and hides them for ``ack_timeout`` seconds; ``ack`` deletes the row, ``nack``, a closed
subscription or an expired timeout makes it visible again. Acknowledgements ride with the
member's next claim, in its statement. When idle, a member waits for its topic's NOTIFY
(:class:`~core_plugin_postgres.pubsub.PostgresPubSub` listens) or ``poll_interval``, whichever
comes first.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import asyncpg
from hookspecs import Message, PubSubUnavailable

if TYPE_CHECKING:
    from core_plugin_postgres.pubsub import PostgresPubSub

log = logging.getLogger("core_plugin_postgres.pubsub")

# Deletes what the member acknowledged since its last claim, in the same statement.
CLAIM = """
WITH acked AS (DELETE FROM core_pubsub_messages WHERE id = ANY($5::bigint[]))
UPDATE core_pubsub_messages AS m
SET visible_at = clock_timestamp() + make_interval(secs => $4), attempts = m.attempts + 1
FROM (SELECT id FROM core_pubsub_messages
      WHERE topic = $1 AND grp = $2 AND visible_at <= clock_timestamp()
      ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) AS c
WHERE m.id = c.id
RETURNING m.id, m.body, m.attributes::text AS attributes, m.key
"""

#: Longest wait of :meth:`PostgresSubscription.close` for a claim statement still running.
CLOSE_WAIT = 5.0
ACK = "DELETE FROM core_pubsub_messages WHERE id = ANY($1::bigint[])"
NACK = "UPDATE core_pubsub_messages SET visible_at = '-infinity' WHERE id = ANY($1::bigint[])"



class PostgresDelivery:
    """One claimed row; ``ack`` is batched with the member's next claim, ``nack`` is at once."""

    __slots__ = ("_id", "_message", "_settled", "_subscription")

    def __init__(self, row_id: int, message: Message, subscription: PostgresSubscription) -> None:
        self._id = row_id
        self._message = message
        self._subscription = subscription
        self._settled = False

    @property
    def message(self) -> Message:
        return self._message

    async def ack(self) -> None:
        if not self._settled:
            self._settled = True
            await self._subscription._ack(self._id)

    async def nack(self) -> None:
        if not self._settled:
            self._settled = True
            await self._subscription._nack(self._id)


class PostgresSubscription:
    """A member of a consumer group: claims batches, waits for NOTIFY (or polls) when idle.

    Acknowledged ids are deleted by the next claim's statement (at least every
    ``poll_interval`` while the subscription is iterated, which is below ``ack_timeout``) or
    on close; until then their rows stay hidden from the other members, so they are not
    delivered again unless this process dies first (at-least-once).
    """

    def __init__(self, owner: PostgresPubSub, topic: str, group: str) -> None:
        self._owner = owner
        self.topic = topic
        self.group = group
        self._wake = asyncio.Event()
        self._closed = False
        self._acked: list[int] = []
        self._in_flight: set[int] = set()
        #: Clear while a claim statement runs: close waits for it, so that the rows it claims
        #: are released with the others (and it cannot claim the rows close just released).
        self._not_claiming = asyncio.Event()
        self._not_claiming.set()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (the consumer may close us while we yield)."""
        return self._closed

    def _notify(self) -> None:
        self._wake.set()

    async def __aiter__(self) -> AsyncIterator[PostgresDelivery]:
        owner = self._owner
        while not self._closed:
            self._wake.clear()
            acked, self._acked = self._acked, []
            rows = await self._claim_batch(acked)
            if not rows:
                await self._idle(owner.poll_interval)
                continue
            if await self._closed_during_claim():
                return
            for row in sorted(rows, key=lambda r: r["id"]):
                if self.closed:
                    break
                message = Message(body=row["body"], attributes=json.loads(row["attributes"]), key=row["key"])
                yield PostgresDelivery(row["id"], message, self)

    async def _claim_batch(self, acked: list[int]) -> list[Any]:
        """Claim the next batch (deleting ``acked``) and hold it in flight; none on an outage."""
        self._not_claiming.clear()
        try:
            rows = await self._owner._run(functools.partial(self._claim, acked=acked))
        except PubSubUnavailable as exc:
            self._acked.extend(acked)
            log.warning("pubsub %s: %s; retrying", self.topic, exc)
            return []
        else:
            self._in_flight.update(row["id"] for row in rows)
            return rows
        finally:
            self._not_claiming.set()

    async def _claim(self, pool: asyncpg.Pool, *, acked: list[int]) -> list[Any]:
        """Delete ``acked`` rows and claim the next batch, in one statement."""
        owner = self._owner
        rows: list[Any] = await pool.fetch(CLAIM, self.topic, self.group, owner.prefetch, owner.ack_timeout, acked)
        return rows

    async def _idle(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass

    async def _flush(self) -> None:
        if self._acked:
            ids, self._acked = self._acked, []
            try:
                await self._owner._run(lambda pool: pool.execute(ACK, ids))
            except PubSubUnavailable:
                self._acked.extend(ids)
                raise

    async def _ack(self, row_id: int) -> None:
        self._in_flight.discard(row_id)
        self._acked.append(row_id)
        if self._closed:
            await self._flush()

    async def _nack(self, row_id: int) -> None:
        self._in_flight.discard(row_id)
        await self._owner._run(lambda pool: pool.execute(NACK, [row_id]))

    async def _closed_during_claim(self) -> bool:
        """If we were closed while a claim ran, give its rows back to the group now (not after ack_timeout)."""
        if not self._closed:
            return False
        try:
            await self._release_in_flight()
        except PubSubUnavailable as exc:
            log.warning("pubsub %s: could not release on close (%s); rows reappear after ack_timeout",
                        self.topic, exc)
        return True

    async def _release_in_flight(self) -> None:
        """Make the claimed, unsettled rows visible to the group's other members at once."""
        if self._in_flight:
            ids, self._in_flight = list(self._in_flight), set()
            await self._owner._run(lambda pool: pool.execute(NACK, ids))

    async def close(self) -> None:
        """Delete what was acknowledged; make the unsettled deliveries visible to others."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._owner._subscriptions.discard(self)
        try:
            await asyncio.wait_for(self._not_claiming.wait(), CLOSE_WAIT)
        except TimeoutError:
            log.warning("pubsub %s: a claim still runs on close; its rows reappear after ack_timeout", self.topic)
        try:
            await self._flush()
            await self._release_in_flight()
        except PubSubUnavailable as exc:
            log.warning("pubsub %s: could not settle on close (%s); rows reappear after ack_timeout",
                        self.topic, exc)
