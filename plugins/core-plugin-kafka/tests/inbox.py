"""A test helper: drain a subscription into a queue, to read deliveries with a deadline."""

from __future__ import annotations

import asyncio
from types import TracebackType

from hookspecs.pubsub import Delivery, Subscription


class Inbox:
    """Collects the deliveries of ``subscription`` in a background task."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        async for delivery in self.subscription:
            self._queue.put_nowait(delivery)

    async def get(self, timeout: float = 15) -> Delivery:
        """The next delivery; ``TimeoutError`` if none comes within ``timeout`` seconds."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def take(self, count: int, timeout: float = 15) -> list[Delivery]:
        """The next ``count`` deliveries, all within ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        return [await self.get(max(0.0, deadline - loop.time())) for _ in range(count)]

    async def quiet(self, seconds: float) -> list[Delivery]:
        """Whatever arrives within ``seconds`` (to check that nothing more comes)."""
        got: list[Delivery] = []
        try:
            while True:
                got.append(await self.get(seconds))
        except TimeoutError:
            return got

    async def close(self) -> None:
        await self.subscription.close()
        await asyncio.wait_for(self._task, 30)

    async def __aenter__(self) -> Inbox:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
