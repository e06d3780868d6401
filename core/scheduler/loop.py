"""The schedule of one action: tick, claim every due job in batches, load each batch.

A scheduled (non-realtime) action ticks on its interval: ``@every <d>`` ticks every ``d``
from the scheduler's start, a CRON string at each of its times (UTC). The scheduler also runs
one pass when it starts, so jobs that became due while it was down do not wait a whole
interval. At each tick it claims due jobs ``scheduler.batch_size`` at a time, one ``load``
per batch, until no job is due; with a rate limit (:mod:`core.scheduler.ratelimit`), each claim
takes at most the tokens granted, waiting for them; with a concurrency limit, each claim asks for
at most the limit and the store claims no more than the limit minus the action's jobs executing,
and the next batch is claimed after the load (not while it runs, which would find no room).
A job that fails is due again at the tick after the one that
claimed it (its ``due_at`` is computed from the tick's time), or later with backoff.

With a supervisor, a pass holds the lease ``action:<destination>/<action>``: one node at a time
loads a scheduled action; a node that finds the lease taken skips that tick, and a node that
loses its lease mid-pass stops after its current batch. The lease is short (``action_lease_seconds``,
the node TTL under the scheduler) and renewed in the background while the pass runs, so that
the lease of a node that died lapses about when its heartbeat does.

:meth:`ActionLoop.wake` runs a pass at once instead of at the next tick: the scheduler calls it
when recovery made jobs of the action due again (their node died).

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
from core.observability.outage import Outage
from core.runtime import Runtime
from core.scheduler.paused import is_paused
from core.scheduler.ratelimit import RateGate
from core.scheduler.runner import Runner
from core.timing import Interval, parse_interval
from hookspecs import Action, Claim, Destination, Job, Lease, StoreUnavailable, Supervisor

log = logging.getLogger("core.scheduler")


def lease_key(destination: str, action: str) -> str:
    """The supervisor key that makes a scheduled action's loads a singleton."""
    return f"action:{destination}/{action}"


class ActionLoop:
    """Ticks for one action until ``stopping`` is set.

    :param poll_seconds: the tick period of a realtime action's poll.
    :param action_lease_seconds: TTL of a scheduled pass's lease (default ``lease_seconds``).
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
        action_lease_seconds: float | None = None,
        gate: RateGate | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.runtime = runtime
        self.runner = runner
        self.destination = destination
        self.action = action
        self.stopping = stopping
        self.batch_size = batch_size
        self.gate = gate
        #: At most this many of the action's jobs executing, cluster-wide (``None``: no limit).
        self.concurrency = concurrency
        self.batch_size = batch_size if concurrency is None else min(batch_size, concurrency)
        self._asked = self.batch_size
        self.claim = Claim(owner=runtime.node_id, lease_seconds=lease_seconds)
        self.action_lease_seconds = lease_seconds if action_lease_seconds is None else action_lease_seconds
        self._woken = asyncio.Event()
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

    def wake(self) -> None:
        """Run a pass now rather than at the next tick (the ticks keep their times)."""
        self._woken.set()

    async def run(self) -> None:
        """Tick until stopped; a failing pass (store down) is logged and retried next tick."""
        tick = at = datetime.now(UTC)
        scheduled = True  # False for a pass run by a wake: the ticks keep their times
        outage = Outage(log, f"scheduled pass of {self.name}")  # a store outage: one line, not one a tick
        while not self.stopping.is_set():
            try:
                await self.tick(at)
            except StoreUnavailable as exc:
                outage.failed(f"{exc}; retrying at each tick until the store is back")
            except Exception:
                log.exception("scheduled pass of %s failed; retrying at the next tick", self.name)
            else:
                outage.recovered()
            now = datetime.now(UTC)
            if scheduled:
                tick = self.interval.next_after(tick)
                if tick <= now:  # the pass outlasted the interval: skip the missed ticks
                    tick = self.interval.next_after(now)
            scheduled = not await self._sleep((tick - now).total_seconds())
            at = tick if scheduled else datetime.now(UTC)

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``, or until stopped or woken; return whether woken."""
        waits = [asyncio.ensure_future(self.stopping.wait()), asyncio.ensure_future(self._woken.wait())]
        try:
            await asyncio.wait(waits, timeout=max(seconds, 0), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        woken = self._woken.is_set() and not self.stopping.is_set()
        self._woken.clear()
        return woken

    async def tick(self, tick: datetime) -> int:
        """One pass: claim and load due jobs until none is due; return how many were loaded."""
        supervisor = self.runtime.supervisor
        keeper: LeaseKeeper | None = None
        if supervisor is not None and not self.realtime:
            lease = await supervisor.acquire(
                lease_key(self.destination.name, self.action.name),
                owner=self.runtime.node_id, ttl=self.action_lease_seconds,
            )
            if lease is None:
                log.debug("%s: another node holds the lease; skipping this tick", self.name)
                return 0
            keeper = LeaseKeeper(supervisor, lease, self.action_lease_seconds, self.name)
            if self._held is not None:
                self._held.set(1)
        loaded = 0
        try:
            jobs = await self._claim()
            while jobs:
                # Claim the next batch while this one loads: the claim and this batch's
                # transitions then share the store's commits. A batch claimed before a stop
                # is released by the runner, not loaded.
                # Under a concurrency limit a claim may take fewer than asked (other loads hold
                # the room): go on while it takes any, claiming after the load.
                more = (len(jobs) == self._asked or self.concurrency is not None) and not self.stopping.is_set()
                if more and keeper is not None and keeper.lease is None:
                    log.warning("%s: lost the lease mid-pass; another node continues", self.name)
                    more = False
                following = asyncio.ensure_future(self._claim()) if more and self.concurrency is None else None
                try:
                    await self.runner.run(self.destination, self.action, jobs, retry_from=tick)
                finally:
                    loaded += len(jobs)
                    if following is not None:
                        jobs = await following
                    else:
                        jobs = await self._claim() if more else []
        finally:
            if keeper is not None:
                if self._held is not None:
                    self._held.set(0)
                await keeper.release()
        return loaded

    async def _claim(self) -> list[Job]:
        if self.stopping.is_set():  # no claim after the signal
            return []
        if await is_paused(self.runtime.store, self.destination.name, self.action.name):
            return []
        self._asked = self.batch_size
        if self.gate is not None:  # claim no more than the rate limit grants
            self._asked = await self.gate.take(self.batch_size, self.stopping)
            if not self._asked:
                return []
        limited = {} if self.concurrency is None else {"concurrency": self.concurrency}
        jobs = await self.runtime.store.claim(
            self.claim, destination=self.destination.name, action=self.action.name,
            limit=self._asked, now=datetime.now(UTC), **limited,
        )
        if self.gate is not None:
            await self.gate.give_back(self._asked - len(jobs))
        return jobs


class LeaseKeeper:
    """Renews a pass's lease every third of its TTL until released; ``lease`` is ``None`` once lost."""

    def __init__(self, supervisor: Supervisor, lease: Lease, ttl: float, name: str) -> None:
        self.supervisor = supervisor
        self.lease: Lease | None = lease
        self.ttl = ttl
        self.name = name
        self._task = asyncio.create_task(self._renew(lease), name=f"lease {lease.key}")

    async def _renew(self, lease: Lease) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                renewed = await self.supervisor.renew(lease, ttl=self.ttl)
            except Exception as exc:  # noqa: BLE001 - retried until the lease is over
                log.warning("%s: could not renew the lease (%s); retrying", self.name, exc)
                continue
            self.lease = renewed
            if renewed is None:
                return
            lease = renewed

    async def release(self) -> None:
        """Stop renewing and release the lease if still held."""
        self._task.cancel()
        await asyncio.wait({self._task})
        if self.lease is not None:
            await self.supervisor.release(self.lease)
