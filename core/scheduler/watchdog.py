"""The event-loop watchdog: tells when a load blocks the scheduler's event loop.

A ``load`` is ``async``; one that runs synchronous code (``time.sleep``, a blocking client, a
long computation) holds the whole event loop: no other load, claim, recovery or timer runs,
and ``scheduler.load_timeout`` cannot fire until the code returns. Python cannot interrupt it,
so the scheduler makes it visible instead: a task on the loop beats every :data:`BEAT_SECONDS`,
and a thread of its own checks the beats. A loop silent for longer than ``threshold`` (the
``load_timeout``) is logged as an error naming the loads running, ``core_event_loop_lag_seconds``
shows the silence as it grows, and ``core_event_loop_stalls_total`` counts it; when the loop
answers again, the length of the block is logged. The loads' jobs are not lost: the load's
outcome (or its timeout) is recorded once the loop runs again, and a block longer than the
claim lease is recovered like a crash. The scheduler's ``/_health`` is served from a thread too
(:class:`core.observability.http.SchedulerListener`), so it answers during a block.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable

from core.observability import metrics

log = logging.getLogger("core.scheduler")

#: Seconds between the loop's beats (and the thread's checks).
BEAT_SECONDS = 0.25


class Watchdog:
    """Watches the running event loop from a thread; :meth:`start`, :meth:`stop`.

    :param threshold: seconds of silence after which the loop is reported blocked.
    :param running: what is running on the loop (the loads), named in the report.
    """

    def __init__(self, threshold: float, running: Callable[[], Iterable[str]]) -> None:
        self.threshold = threshold
        self.running = running
        self._beat = time.monotonic()
        self._done = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._lag = metrics.child(metrics.LOOP_LAG)
        self._stalls = metrics.child(metrics.LOOP_STALLS)

    def lag(self) -> float:
        """Seconds since the loop last beat (0 while it beats on time)."""
        return max(0.0, time.monotonic() - self._beat - BEAT_SECONDS)

    def start(self) -> None:
        """Start beating on the running loop and watching from a daemon thread."""
        self._beat = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._beating(), name="scheduler watchdog")
        self._thread = threading.Thread(target=self._watch, name="scheduler watchdog", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop the beats and the thread."""
        self._done.set()
        if self._task is not None:
            self._task.cancel()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)

    async def _beating(self) -> None:
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(BEAT_SECONDS)

    def _watch(self) -> None:
        blocked_since: float | None = None
        while not self._done.wait(BEAT_SECONDS):
            lag = self.lag()
            self._lag.set(lag)
            if lag > self.threshold and blocked_since is None:
                blocked_since = self._beat
                self._stalls.inc()
                log.error(
                    "the event loop has been blocked for %.1fs, past scheduler.load_timeout = %gs: a load runs "
                    "synchronous code (use await, or asyncio.to_thread for blocking calls); running: %s",
                    lag, self.threshold, _names(self.running),
                )
            elif lag <= self.threshold and blocked_since is not None:
                log.warning("the event loop answers again after being blocked for %.1fs",
                            self._beat - blocked_since)
                blocked_since = None


def _names(running: Callable[[], Iterable[str]]) -> str:
    """What runs on the loop, read from this thread (the loop's own dict may be changing)."""
    try:
        names = list(running())
    except RuntimeError:  # changed size while read
        return "(could not be read)"
    return "; ".join(names) or "no load (a hook or an adapter)"
