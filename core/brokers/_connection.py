"""When a broker adapter may try to connect again: a throttled, growing backoff.

A publish that finds the broker down must fail at once (the gateway falls back to the
schedule), not wait for a connect timeout on every call. So after a failed attempt the next one
is allowed only ``wait`` seconds later, and each further failure doubles the wait up to
``ceiling``; a success resets it.
"""

from __future__ import annotations

import time


class Backoff:
    """The earliest moment of the next connection attempt."""

    __slots__ = ("_ceiling", "_first", "_next_at", "_wait")

    def __init__(self, first: float, ceiling: float) -> None:
        self._first = first
        self._ceiling = max(first, ceiling)
        self._wait = first
        self._next_at = float("-inf")

    def ready(self) -> bool:
        """Whether an attempt may be made now."""
        return time.monotonic() >= self._next_at

    def failed(self) -> None:
        """An attempt failed: hold the next one back, longer each time."""
        self._next_at = time.monotonic() + self._wait
        self._wait = min(self._wait * 2, self._ceiling)

    def reset(self) -> None:
        """Connected (or asked to connect now): the next failure waits ``first`` again."""
        self._wait = self._first
        self._next_at = float("-inf")
