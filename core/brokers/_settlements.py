"""Settlements sent in batches: the acknowledgement handles of one kind (ack, nack) that a
broker takes many at a time (SQS, Pub/Sub), sent by one flusher per kind that carries, on each
round, everything that came while the last round was on its way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.brokers._subscription import BrokerSubscription


class Settlements:
    """Handles to send with ``send`` (one call per ``batch`` handles, up to ``calls`` calls at a
    time); a call that fails is logged by :meth:`BrokerSubscription.settled`: the broker
    delivers those messages again."""

    def __init__(self, subscription: BrokerSubscription[Any], what: str,
                 send: Callable[[list[str]], Awaitable[Any]], *, batch: int, calls: int = 1) -> None:
        self._subscription = subscription
        self._what = what
        self._send = send
        self._batch = batch
        self._round = batch * calls
        self._pending: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, handle: str) -> None:
        """Send ``handle`` soon."""
        self._pending.append(handle)
        if self._task is None or self._task.done():
            name = f"{self._what} {self._subscription.topic}/{self._subscription.group}"
            self._task = asyncio.create_task(self._flush(), name=name)

    async def _flush(self) -> None:
        while self._pending:
            taken, self._pending = self._pending[:self._round], self._pending[self._round:]
            await asyncio.gather(*(
                self._subscription.settled(self._send(taken[i:i + self._batch]), self._what)
                for i in range(0, len(taken), self._batch)
            ))

    async def sent(self) -> None:
        """Wait until everything added so far is sent (or could not be); a cancelled caller
        does not cancel the sending."""
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})
