"""Realtime delivery: jobs announced on the broker are claimed and loaded at once.

The consumer joins group ``core.scheduler`` on :data:`~hookspecs.JOBS_TOPIC` (schedulers share
the messages). Each message names jobs of one action (:mod:`core.ready_jobs`); they are claimed
by id, loaded, their transitions recorded, and only then is the message acknowledged: at
least once. Jobs already claimed or finished (another scheduler, the poll, a duplicate
message) are skipped by the claim, so such a message is simply acknowledged.

The events of a message's jobs (their ids are in it) are read while the jobs are claimed, not
after: the load starts one store round trip sooner.
Messages of one action are merged into one load (up to ``scheduler.batch_size`` jobs) when
they wait, and up to :data:`LOADS_PER_ACTION` loads of one action run at once, so a new
message never waits for a whole previous load: under load, delivery batches by itself and the
store's group commit shares the claims and transitions of concurrent loads. An action with a
rate limit takes its tokens before each claim, like the poll (:mod:`core.scheduler.ratelimit`).
An action with a concurrency limit claims at most the limit at a time, and the store claims no
more than the limit minus its jobs executing (on every scheduler): ids a claim left for want of
room are claimed again after this worker's load, and those of a claim that found no room at all
are left to the poll.
A message that cannot be read, or names an action this scheduler does not have, is
acknowledged with a warning: its jobs are in the store, where a poll finds them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from core.ready_jobs import ReadyJobs, decode
from core.runtime import Runtime
from core.scheduler.limits import Limits
from core.scheduler.paused import is_paused
from core.scheduler.ratelimit import RateGate
from core.scheduler.runner import Runner
from hookspecs import JOBS_TOPIC, Action, Claim, Delivery, Destination, Event, PubSub, Subscription

log = logging.getLogger("core.scheduler")

GROUP = "core.scheduler"
#: Seconds between attempts to (re)join the topic while the broker is unavailable.
RESUBSCRIBE_SECONDS = 2.0
#: Most loads of one action running at once for realtime messages.
LOADS_PER_ACTION = 4


@dataclass(slots=True)
class _Pending:
    delivery: Delivery
    ready: ReadyJobs


class RealtimeConsumer:
    """Reads the jobs topic until ``stopping`` is set; one worker per action with pending messages."""

    def __init__(
        self, runtime: Runtime, runner: Runner, pubsub: PubSub, stopping: asyncio.Event, *,
        batch_size: int, lease_seconds: float, gates: Mapping[tuple[str, str], RateGate] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.runtime = runtime
        self.runner = runner
        self.pubsub = pubsub
        self.stopping = stopping
        self.batch_size = batch_size
        #: The rate limits by ``(destination, action)``.
        self.gates = dict(gates or {})
        #: The concurrency limits by ``(destination, action)``.
        self.limits = dict(limits or {})
        self.claim = Claim(owner=runtime.node_id, lease_seconds=lease_seconds)
        self._pending: dict[tuple[str, str], deque[_Pending]] = {}
        self._workers: dict[tuple[str, str], set[asyncio.Task[None]]] = {}
        self._subscription: Subscription | None = None

    async def run(self) -> None:
        """Subscribe (again after a broker outage) and dispatch deliveries until stopped."""
        while not self.stopping.is_set():
            try:
                self._subscription = await self.pubsub.subscribe(JOBS_TOPIC, group=GROUP)
                if self.stopping.is_set():
                    break
                async for delivery in self._subscription:
                    await self._dispatch(delivery)
                    if self.stopping.is_set():
                        break
            except Exception as exc:  # noqa: BLE001 - the broker is optional: polls deliver meanwhile
                log.warning("realtime subscription failed (%s); retrying in %gs", exc, RESUBSCRIBE_SECONDS)
            finally:
                await self._leave()
            try:
                await asyncio.wait_for(self.stopping.wait(), RESUBSCRIBE_SECONDS)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Stop reading (unsettled messages go back to the group), then let running loads finish."""
        await self._leave()
        for queue in self._pending.values():
            while queue:
                await queue.popleft().delivery.nack()
        running = [task for tasks in self._workers.values() for task in tasks]
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    async def _leave(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                await subscription.close()
            except Exception as exc:  # noqa: BLE001 - leaving a broken broker cannot fail the stop
                log.warning("closing the realtime subscription failed: %s", exc)

    async def _dispatch(self, delivery: Delivery) -> None:
        if self.stopping.is_set():  # read after the signal: back to the group
            await delivery.nack()
            return
        try:
            ready = decode(delivery.message)
            self.runtime.pipeline.action(f"{ready.destination}.{ready.action}")
        except Exception as exc:  # noqa: BLE001 - a bad message is acknowledged, never retried forever
            log.warning("realtime message ignored: %s", exc)
            await delivery.ack()
            return
        key = (ready.destination, ready.action)
        self._pending.setdefault(key, deque()).append(_Pending(delivery, ready))
        workers = self._workers.setdefault(key, set())
        if len(workers) < LOADS_PER_ACTION:
            task = asyncio.create_task(self._work(key), name=f"realtime {key[0]}.{key[1]}")
            workers.add(task)

    async def _deliver(
        self, destination: Destination, action: Action, ids: list[str], trace: Mapping[str, str], now: datetime,
        event_ids: list[str],
    ) -> None:
        """Claim and load ``ids``, ``batch_size`` (or what the rate limit grants) at a time; stop
        early, leaving the rest to the poll, once stopping or paused. The events of
        ``event_ids`` are read meanwhile."""
        reading = asyncio.ensure_future(self.runner.read_events(event_ids))
        try:
            await self._claim_and_run(destination, action, ids, trace, now, reading)
        finally:
            reading.cancel()  # stopped or paused before a load needed them
            await _read(reading)

    async def _claim_and_run(
        self, destination: Destination, action: Action, ids: list[str], trace: Mapping[str, str], now: datetime,
        reading: asyncio.Future[dict[str, Event]],
    ) -> None:
        """:meth:`_deliver`'s claims and loads, each load with the events ``reading`` brings."""
        key = (destination.name, action.name)
        gate = self.gates.get(key)
        limit = self.limits.get(key)
        limited = {} if limit is None else {"concurrency": limit}
        while ids:
            if self.stopping.is_set():  # no claim after the signal: the poll has them
                return
            if await is_paused(self.runtime.store, *key):  # the poll has them once resumed
                return
            count = min(len(ids), self.batch_size, limit or self.batch_size)
            if gate is not None:
                count = await gate.take(count, self.stopping)
                if not count:
                    return
            chunk, ids = ids[:count], ids[count:]
            jobs = await self.runtime.store.claim_ids(self.claim, chunk, now=now, **limited)
            if gate is not None:
                await gate.give_back(count - len(jobs))
            if limit is not None:
                if not jobs:  # no room: the poll claims them once there is
                    return
                claimed = {job.id for job in jobs}
                ids = [i for i in chunk if i not in claimed] + ids  # left for want of room, maybe
            if jobs:
                await self.runner.run(destination, action, jobs, retry_from=now, trace=trace,
                                      events=await _read(reading))

    async def _work(self, key: tuple[str, str]) -> None:
        """Load the pending messages of one action, merged, until none is left."""
        destination, action = self.runtime.pipeline.action(f"{key[0]}.{key[1]}")
        queue = self._pending[key]
        try:
            await asyncio.sleep(0)  # let the messages already received join this load
            while queue and not self.stopping.is_set():
                taken = [queue.popleft()]
                count = len(taken[0].ready.job_ids)
                while queue and count + len(queue[0].ready.job_ids) <= self.batch_size:
                    count += len(queue[0].ready.job_ids)
                    taken.append(queue.popleft())
                ids = list(dict.fromkeys(i for p in taken for i in p.ready.job_ids))
                event_ids = list(dict.fromkeys(i for p in taken for i in p.ready.event_ids))
                now = datetime.now(UTC)
                try:
                    await self._deliver(destination, action, ids, taken[0].delivery.message.attributes, now, event_ids)
                except Exception as exc:  # noqa: BLE001 - redelivered later; claimed jobs are recovered
                    log.warning("realtime load of %s.%s failed to record (%s); message returned", *key, exc)
                    for pending in taken:
                        await pending.delivery.nack()
                    await asyncio.sleep(RESUBSCRIBE_SECONDS)
                    continue
                for pending in taken:
                    await pending.delivery.ack()
        except Exception:
            log.exception("realtime worker of %s.%s failed", *key)
        finally:  # at once, not in a done callback: a message arriving now must start a worker
            task = asyncio.current_task()
            if task is not None:
                self._workers[key].discard(task)


async def _read(reading: asyncio.Future[dict[str, Event]]) -> dict[str, Event]:
    """The events read meanwhile; none if the read failed or was cancelled (the runner reads
    what it misses itself)."""
    try:
        return await reading
    except (Exception, asyncio.CancelledError):  # noqa: BLE001 - a failed read is only a missed shortcut
        return {}
