"""The schedule of one action: tick, claim every due job in batches, load each batch.

A scheduled (non-realtime) action ticks on its interval: ``@every <d>`` ticks every ``d``
from the scheduler's start, a CRON string at each of its times (UTC). The scheduler also runs
one pass when it starts, so jobs that became due while it was down do not wait a whole
interval. At each tick it claims due jobs ``scheduler.batch_size`` at a time, one ``load``
per batch, until no job is due. A job that fails is due again at the tick after the one that
claimed it (its ``due_at`` is computed from the tick's time), or later with backoff.

With a supervisor, a pass holds the lease ``action:<destination>/<action>``: one node at a time
loads a scheduled action; a node that finds the lease taken skips that tick, and a node that
loses its lease mid-pass stops after its current batch.

A realtime action gets its jobs from the broker; it is also polled every
``scheduler.poll_seconds`` (no lease: claims never overlap) for jobs the broker did not
bring: published while no scheduler listened, not published because the broker was down or
absent, or failed and due for a retry.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from core.observability import metrics
from core.runtime import Runtime
from core.scheduler.paused import is_paused
from core.scheduler.runner import Runner
from core.timing import Interval, parse_interval
from hookspecs import Action, Claim, Destination, Job, Lease

log = logging.getLogger("core.scheduler")


def lease_key(destination: str, action: str) -> str:
    """The supervisor key that makes a scheduled action's loads a singleton."""
    return f"action:{destination}/{action}"


class ActionLoop:
    """Ticks for one action until ``stopping`` is set.

    :param poll_seconds: the tick period of a realtime action's poll.
    """

    def __init__(
        self,
        runtime: Runtime,
        runner: Runner,
        destination: Destination,
        action: Action,
        stopping: asyncio.Event,
        *,
        batch_size: int,
        lease_seconds: float,
        poll_seconds: float,
    ) -> None:
        self.runtime = runtime
        self.runner = runner
        self.destination = destination
        self.action = action
        self.stopping = stopping
        self.batch_size = batch_size
        self.claim = Claim(owner=runtime.node_id, lease_seconds=lease_seconds)
        schedule = destination.schedule_of(action.name)
        self.realtime = schedule.realtime
        self.interval: Interval = (
            Interval(f"@every {poll_seconds}s", every=poll_seconds)
            if self.realtime
            else parse_interval(schedule.interval)
        )
        self.name = f"{destination.name}.{action.name}"
        self._held = None if self.realtime else metrics.child(
            metrics.LEASES_HELD, "action", f"{destination.name}/{action.name}")

    async def run(self) -> None:
        """Tick until stopped; a failing pass (store down) is logged and retried next tick."""
        tick = datetime.now(UTC)
        while not self.stopping.is_set():
            try:
                await self.tick(tick)
            except Exception:
                log.exception("scheduled pass of %s failed; retrying at the next tick", self.name)
            now = datetime.now(UTC)
            tick = self.interval.next_after(tick)
            if tick <= now:  # the pass outlasted the interval: skip the missed ticks
                tick = self.interval.next_after(now)
            try:
                await asyncio.wait_for(self.stopping.wait(), (tick - now).total_seconds())
            except TimeoutError:
                pass

    async def tick(self, tick: datetime) -> int:
        """One pass: claim and load due jobs until none is due; return how many were loaded."""
        supervisor = self.runtime.supervisor
        lease: Lease | None = None
        if supervisor is not None and not self.realtime:
            lease = await supervisor.acquire(
                lease_key(self.destination.name, self.action.name),
                owner=self.runtime.node_id, ttl=self.claim.lease_seconds,
            )
            if lease is None:
                log.debug("%s: another node holds the lease; skipping this tick", self.name)
                return 0
            if self._held is not None:
                self._held.set(1)
        loaded = 0
        try:
            jobs = await self._claim()
            while jobs:
                # Claim the next batch while this one loads: the claim and this batch's
                # transitions then share the store's commits. A batch claimed before a stop
                # is released by the runner, not loaded.
                more = len(jobs) == self.batch_size and not self.stopping.is_set()
                if more and supervisor is not None and lease is not None:
                    lease = await supervisor.renew(lease, ttl=self.claim.lease_seconds)
                    if lease is None:
                        log.warning("%s: lost the lease mid-pass; another node continues", self.name)
                        more = False
                following = asyncio.ensure_future(self._claim()) if more else None
                try:
                    await self.runner.run(self.destination, self.action, jobs, retry_from=tick)
                finally:
                    loaded += len(jobs)
                    jobs = await following if following is not None else []
        finally:
            if supervisor is not None and lease is not None:
                if self._held is not None:
                    self._held.set(0)
                await supervisor.release(lease)
        return loaded

    async def _claim(self) -> list[Job]:
        if self.stopping.is_set():  # no claim after the signal
            return []
        if await is_paused(self.runtime.store, self.destination.name, self.action.name):
            return []
        return await self.runtime.store.claim(
            self.claim, destination=self.destination.name, action=self.action.name,
            limit=self.batch_size, now=datetime.now(UTC),
        )
