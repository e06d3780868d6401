"""Publishing realtime jobs after their commit, off the request path.

The jobs are in the store before they are offered here, so publishing is only a hint to the
schedulers: a slow or absent broker must not slow ingestion, and a failure loses nothing (the
scheduler's schedule delivers the job). One task publishes what many requests committed, in
commit order, as few messages as possible (one per action per chunk of job ids).

A publish that fails is tried again every :data:`RETRY_SECONDS` for :data:`HOLD_SECONDS`,
with what was committed meanwhile: a broker that is reconnecting (its SDK is a moment behind
the server's return) still gets the jobs committed just before it is back, so realtime delivery
resumes with the broker instead of at the next scheduled pass. Older jobs are left to the schedule.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence

from core.observability import metrics, tracing
from core.observability.outage import Outage
from core.ready_jobs import encode
from hookspecs import JOBS_TOPIC, Job, PubSub

log = logging.getLogger("core.gateway")

#: Job ids per publish call (keeps each message well under brokers' size limits).
CHUNK = 1000
#: Jobs waiting to be published above which new ones are left to the schedule.
MAX_PENDING = 100_000
#: Seconds :meth:`Publisher.close` spends publishing what is left.
FLUSH_SECONDS = 5.0
#: Most requests' spans one publish span links to (the first is its parent).
MAX_LINKS = 128
#: Seconds a job whose publish failed is offered again before it is left to the schedule.
HOLD_SECONDS = 5.0
#: Seconds between two attempts while publishes fail.
RETRY_SECONDS = 0.1


class Publisher:
    """Publishes offered jobs on :data:`~hookspecs.JOBS_TOPIC` from one background task."""

    def __init__(self, pubsub: PubSub, *, hold_seconds: float = HOLD_SECONDS) -> None:
        self.pubsub = pubsub
        self.hold_seconds = hold_seconds
        self._pending: list[Job] = []
        #: Jobs whose publish failed, in commit order, each with the moment it is given up.
        self._held: deque[tuple[float, Job]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._skipped = 0
        self._closing = False
        self._traces: list[Mapping[str, str]] = []
        self._failures = metrics.child(metrics.PUBLISH_FAILURES, "gateway")
        self._outage = Outage(log, "publishing realtime jobs (the schedule delivers what is not published)")

    @property
    def waiting(self) -> int:
        """Jobs offered and not published yet (queued, or held after a failed publish)."""
        return len(self._pending) + len(self._held)

    def offer(self, jobs: Sequence[Job], trace: Mapping[str, str] | None = None) -> None:
        """Queue committed realtime jobs for publishing; never blocks, never raises."""
        if self._closing:
            return
        if self.waiting + len(jobs) > MAX_PENDING:
            self._skipped += len(jobs)
            if self._skipped == len(jobs):  # log once per backlog episode
                log.warning("the broker is behind (%d jobs waiting to be published): newer realtime "
                            "jobs are left to their schedule", len(self._pending))
            return
        self._pending.extend(jobs)
        if trace is not None and len(self._traces) < MAX_LINKS:
            self._traces.append(trace)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="core-gateway-publisher")
        self._wake.set()

    async def _run(self) -> None:
        while not self._closing:
            if self._held:  # publishing fails: again a little later, with what came meanwhile
                await asyncio.sleep(RETRY_SECONDS)
            else:
                await self._wake.wait()
            self._wake.clear()
            await self._publish_pending()

    async def _publish_pending(self) -> None:
        held = self._take_held()
        while self._pending or held:
            jobs, self._pending = self._pending, []
            traces, self._traces = self._traces, []
            self._skipped = 0
            given_up = time.monotonic() + self.hold_seconds
            batch = held + [(given_up, job) for job in jobs]
            held = []
            if traces and tracing.ON:
                with tracing.tracer().start_as_current_span(
                    f"{JOBS_TOPIC} publish", context=tracing.context_of(traces[0]), kind=tracing.SpanKind.PRODUCER,
                    links=tracing.links_of(traces[1:]), attributes={"core.jobs": len(batch)},
                ):
                    await self._publish(batch, tracing.carrier())
            else:
                await self._publish(batch, None)
            if self._held:  # failed: the next attempt waits RETRY_SECONDS
                return

    def _take_held(self) -> list[tuple[float, Job]]:
        """The held jobs not given up yet (the others wait for the schedule), emptying the hold."""
        now = time.monotonic()
        while self._held and self._held[0][0] <= now:
            self._held.popleft()
        held = list(self._held)
        self._held.clear()
        return held

    async def _publish(self, batch: list[tuple[float, Job]], trace: Mapping[str, str] | None) -> None:
        for start in range(0, len(batch), CHUNK):
            chunk = batch[start:start + CHUNK]
            try:
                await self.pubsub.publish(JOBS_TOPIC, encode((job for _, job in chunk), trace))
            except Exception as exc:  # noqa: BLE001 - held, then the schedule delivers what was not published
                self._failures.inc()
                self._outage.failed(f"{len(chunk)} job(s) not published: {type(exc).__name__}: {exc}")
                self._held.extend(chunk)
            else:
                self._outage.recovered()

    async def close(self) -> None:
        """Publish what is left (for at most :data:`FLUSH_SECONDS`), then stop."""
        self._closing = True
        task, self._task = self._task, None
        if task is None:
            return
        self._wake.set()
        done, _ = await asyncio.wait({task}, timeout=FLUSH_SECONDS)
        if not done:
            task.cancel()
            await asyncio.wait({task})
            log.warning("stopped publishing realtime jobs before the end; the schedule will deliver the rest")
