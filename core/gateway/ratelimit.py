"""The per-client request rate limit of the HTTP triggers (``gateway.rate_limit``): a token
bucket per client, ``429`` with ``Retry-After`` when it is empty.

A client is its API key on a trigger with :class:`~hookspecs.ApiKey` auth, else its address.
The buckets live in this gateway process: with several gateways, each allows the rate.
"""

from __future__ import annotations

import math

#: Clients remembered at most; past it, the buckets that are full again are forgotten first.
MAX_CLIENTS = 100_000


class RateLimit:
    """``rate`` requests a second per client, bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def wait(self, client: str, now: float) -> int:
        """0 if ``client`` may send a request now (one token taken), else the seconds to wait."""
        tokens, at = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.rate))
        if client not in self._buckets and len(self._buckets) >= MAX_CLIENTS:
            self._forget(now)
        self._buckets[client] = (tokens - 1, now)
        return 0

    def _forget(self, now: float) -> None:
        """Drop the buckets full again (as good as new); if none is, the oldest half."""
        full = [c for c, (tokens, at) in self._buckets.items() if tokens + (now - at) * self.rate >= self.burst]
        for client in full or list(self._buckets)[: MAX_CLIENTS // 2]:
            del self._buckets[client]
