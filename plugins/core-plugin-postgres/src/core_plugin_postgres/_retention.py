"""Purge by policy: delete finished history older than a retention period, on one node.

Every process that opens the store runs this loop; a session advisory lock taken with
``pg_try_advisory_lock`` lets one of them purge at a time while the others skip the round.
The purge itself is the store's (events whose jobs are all final, oldest first, in chunks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from hookspecs import StoreUnavailable

from core_plugin_postgres._pg import DISCONNECTED, connect

log = logging.getLogger("core.store.retention")

#: The advisory lock key of the purge round ("purg").
PURGE_LOCK = 0x70757267
#: Failures that skip a round (the next one tries again).
_SKIPPED: tuple[type[BaseException], ...] = (*DISCONNECTED, StoreUnavailable)


async def purge_loop(
    url: str, purge: Callable[[datetime], Awaitable[int]], *, keep: float, interval: float
) -> None:
    """Every ``interval`` seconds, purge finished events older than ``keep`` seconds."""
    while True:
        try:
            conn = await connect(url)
            try:
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", PURGE_LOCK):
                    deleted = await purge(datetime.now(UTC) - timedelta(seconds=keep))
                    if deleted:
                        log.info("purged %d finished events older than %gs", deleted, keep)
            finally:
                await conn.close()  # ends the session, and the lock with it
        except _SKIPPED as exc:
            log.warning("purge skipped: %s", exc)
        await asyncio.sleep(interval)
