"""Rate limits: the token bucket of an action, kept by the store, taken before every claim.

The bucket is in the store because every scheduler already shares it, whatever the supervisor:
``local://`` lives in one process, so it could not share a bucket between schedulers, and a
lease would not do either, as realtime delivery and the polls of realtime actions claim on every
scheduler at once, without one. A take is
one store transaction (:meth:`~hookspecs.Store.take_tokens`), once per claim, never per job:
the scheduler, polling or realtime, claims at most the tokens it was granted, and waits for the
next token when it got none. Tokens granted for jobs that were no longer due (an idle poll, the
end of a backlog, jobs another scheduler claimed) are given back, one more transaction then.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from core.errors import ConfigError
from core.scheduler.limits import require
from core.timing import RATE_FORMS, RateLimit, parse_rate
from hookspecs import Capability, Destination

#: Longest wait between two takes that were granted nothing (a slow rate still notices a stop).
MAX_WAIT = 1.0


class RateGate:
    """The bucket of one action: :meth:`take` returns how many jobs may be claimed now."""

    def __init__(self, store: Any, key: str, limit: RateLimit) -> None:
        self.store = store
        self.key = key
        self.limit = limit

    async def take(self, wanted: int, stopping: asyncio.Event) -> int:
        """Take up to ``wanted`` tokens, waiting for the first one; 0 once ``stopping`` is set."""
        while not stopping.is_set():
            granted: int = await self.store.take_tokens(
                self.key, wanted, rate=self.limit.rate, burst=self.limit.burst, now=datetime.now(UTC)
            )
            if granted:
                return granted
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), min(MAX_WAIT, 1 / self.limit.rate))
        return 0

    async def give_back(self, unused: int) -> None:
        """Return tokens taken for jobs the claim did not find (none if ``unused`` is 0)."""
        if unused > 0:
            await self.store.take_tokens(
                self.key, -unused, rate=self.limit.rate, burst=self.limit.burst, now=datetime.now(UTC)
            )


def gate_of(store: Any, destination: Destination, action: str, capabilities: Collection[str]) -> RateGate | None:
    """The gate of ``destination.action``, or ``None`` without a limit.

    :param capabilities: what the store's registration declares.
    :raises ConfigError: the limit is not a rate.
    :raises CoreError: the store does not declare :attr:`~hookspecs.Capability.RATE_LIMITS`.
    """
    text, burst = destination.rate_of(action)
    if text is None:
        return None
    where = f"action {destination.name}.{action}"
    try:
        limit = parse_rate(text)
    except ValueError:
        raise ConfigError(where, "rate_limit", text, f"{RATE_FORMS}, above 0") from None
    if burst is not None:
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ConfigError(where, "rate_burst", burst, "a whole number >= 1 (jobs at once)")
        limit = RateLimit(limit.rate, burst)
    require(capabilities, Capability.RATE_LIMITS, where, f"rate_limit={text!r}", store)
    return RateGate(store, f"{destination.name}.{action}", limit)
