"""Publishing realtime jobs after their commit, off the request path.

The jobs are in the store before they are offered here, so publishing is only a hint to the
schedulers: a slow or absent broker must not slow ingestion, and a failure loses nothing (the
scheduler's schedule delivers the job). One task publishes what many requests committed, in
commit order, as few messages as possible (one per action per chunk of job ids).
"""

from __future__ import annotations

import asyncio
import logging
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


class Publisher:
    """Publishes offered jobs on :data:`~hookspecs.JOBS_TOPIC` from one background task."""

    def __init__(self, pubsub: PubSub) -> None:
        self.pubsub = pubsub
        self._pending: list[Job] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._skipped = 0
        self._closing = False
        self._traces: list[Mapping[str, str]] = []
        self._failures = metrics.child(metrics.PUBLISH_FAILURES, "gateway")
        self._outage = Outage(log, "publishing realtime jobs (the schedule delivers what is not published)")

    def offer(self, jobs: Sequence[Job], trace: Mapping[str, str] | None = None) -> None:
        """Queue committed realtime jobs for publishing; never blocks, never raises."""
        if self._closing:
            return
        if len(self._pending) + len(jobs) > MAX_PENDING:
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
            await self._wake.wait()
            self._wake.clear()
            await self._publish_pending()

    async def _publish_pending(self) -> None:
        while self._pending:
            jobs, self._pending = self._pending, []
            traces, self._traces = self._traces, []
            self._skipped = 0
            if traces and tracing.ON:
                with tracing.tracer().start_as_current_span(
                    f"{JOBS_TOPIC} publish", context=tracing.context_of(traces[0]), kind=tracing.SpanKind.PRODUCER,
                    links=tracing.links_of(traces[1:]), attributes={"core.jobs": len(jobs)},
                ):
                    await self._publish(jobs, tracing.carrier())
            else:
                await self._publish(jobs, None)

    async def _publish(self, jobs: list[Job], trace: Mapping[str, str] | None) -> None:
        for start in range(0, len(jobs), CHUNK):
            chunk = jobs[start:start + CHUNK]
            try:
                await self.pubsub.publish(JOBS_TOPIC, encode(chunk, trace))
            except Exception as exc:  # noqa: BLE001 - the schedule delivers what was not published
                self._failures.inc()
                self._outage.failed(f"{len(chunk)} job(s) not published: {type(exc).__name__}: {exc}")
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
