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
from datetime import UTC, datetime
from typing import Any

from core.errors import ConfigError, CoreError
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


def gate_of(store: Any, destination: Destination, action: str) -> RateGate | None:
    """The gate of ``destination.action``, or ``None`` without a limit.

    :raises ConfigError: the limit is not a rate, or the store keeps no token buckets.
    """
    text, burst = destination.rate_of(action)
    if text is None:
        return None
    where = f"{destination.name}.{action}"
    try:
        limit = parse_rate(text)
    except ValueError:
        raise ConfigError(f"action {where}", "rate_limit", text, f"{RATE_FORMS}, above 0") from None
    if burst is not None:
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ConfigError(f"action {where}", "rate_burst", burst, "a whole number >= 1 (jobs at once)")
        limit = RateLimit(limit.rate, burst)
    if not callable(getattr(store, "take_tokens", None)):
        raise CoreError(
            f"action {where} has rate_limit={text!r} but the store {type(store).__name__} keeps no token buckets "
            f"(capability {Capability.RATE_LIMITS.value!r})",
            hint="use a store that declares it (sqlite://, postgresql://) or remove the rate_limit",
        )
    return RateGate(store, where, limit)
