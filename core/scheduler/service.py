"""The scheduler service: start destinations, run every action's loop and the realtime
consumer, recover what a crashed scheduler left ``executing``, stop cleanly.

Start-up: each destination's ``init`` then its actions' ``init``, destinations in the order
they were registered (the seeds' order); an error stops start-up with a
:class:`~core.errors.CoreError` naming the destination or action, after shutting down what
was already started. Shutdown is the mirror: actions' ``shutdown`` then the destination's;
errors there are logged and the shutdown goes on.

Stop (SIGTERM sets ``stop``): no new claims, and jobs claimed before the signal but not yet
loaded are released, not loaded; running loads get ``scheduler.grace_seconds`` to finish and
record; loads still running then are cancelled and their jobs released at once (whether the
load honours the cancellation or not): recorded ``awaiting``, due at once, the interrupted
attempt not counted, so nothing is left ``executing`` and a stop costs no retry.

A load that blocks the event loop is reported by the :mod:`~core.scheduler.watchdog`.

Recovery: jobs left ``executing`` by a scheduler that died are recorded ``failed`` by
:meth:`~hookspecs.Store.recover`, at start and then every ``nodes.heartbeat_seconds`` (every
half ``scheduler.lease_seconds`` without a shared node registry): those whose claim lease ran
out and, when the registry could be read, those claimed by a node it no longer lists (its
heartbeat lapsed). The loops of the recovered jobs' actions are woken, so they run again at
once. The interrupted load counts as an attempt: a job that had no retry left is
``discarded`` at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime

from core.errors import CoreError
from core.observability import metrics
from core.runtime import Runtime
from core.scheduler.limits import Limits, concurrency_limits
from core.scheduler.loop import ActionLoop
from core.scheduler.ratelimit import RateGate, gate_of
from core.scheduler.realtime import RealtimeConsumer
from core.scheduler.runner import Runner, stored
from core.scheduler.then import error_text
from core.scheduler.watchdog import Watchdog
from hookspecs import Action, Destination, Job, Status, Transition, new_id

log = logging.getLogger("core.scheduler")

RECOVERED = "recovered: the scheduler running the load stopped before recording it"
#: Seconds to wait for cancelled loads to record their release before giving up on them.
RELEASE_SECONDS = 10.0


async def run_scheduler(
    runtime: Runtime, stop: asyncio.Event, *, on_ready: Callable[[bool], None] | None = None
) -> None:
    """Run the scheduler on an opened runtime until ``stop`` is set, then stop cleanly.

    ``on_ready(True)`` is called once destinations are started and loops run, ``on_ready(False)``
    when stopping begins (the lone scheduler's ``/_ready``).

    :raises CoreError: bad settings, or an ``init`` of a destination or action failed.
    """
    settings = runtime.settings
    lease_seconds: float = settings["scheduler.lease_seconds"]
    load_timeout: float = settings["scheduler.load_timeout"]
    if load_timeout >= lease_seconds:
        raise CoreError(
            f"scheduler.load_timeout = {load_timeout:g}s is not below scheduler.lease_seconds = {lease_seconds:g}s",
            hint="a load outliving its claim lease would be recovered and run twice; "
            "raise lease_seconds or lower load_timeout",
        )
    gates = rate_gates(runtime)  # a bad rate_limit stops the start before any init
    limits = concurrency_limits(runtime)  # so does a control the store cannot enforce
    runner = Runner(runtime, load_timeout=load_timeout, stopping=stop)
    watchdog = Watchdog(load_timeout, lambda: list(runner.loads.values()))
    watchdog.start()
    try:
        started = await start_destinations(runtime, runner)
        try:
            await recover(runtime)
            await _serve(runtime, runner, stop, on_ready, gates, limits)
        finally:
            await shutdown_destinations(started, runner)
    finally:
        await watchdog.stop()


def rate_gates(runtime: Runtime) -> dict[tuple[str, str], RateGate]:
    """The rate limit of every action that has one, by ``(destination, action)``.

    :raises CoreError: a limit is not valid, or the store keeps no token buckets.
    """
    gates: dict[tuple[str, str], RateGate] = {}
    for destination in runtime.pipeline.destinations.values():
        for name in destination.actions:
            gate = gate_of(runtime.store, destination, name, runtime.store_capabilities)
            if gate is not None:
                gates[destination.name, name] = gate
    return gates


async def _serve(
    runtime: Runtime, runner: Runner, stop: asyncio.Event, on_ready: Callable[[bool], None] | None = None,
    gates: dict[tuple[str, str], RateGate] | None = None, limits: Limits | None = None,
) -> None:
    """Run loops, consumer and recovery until ``stop``; then drain, release and return."""
    settings = runtime.settings
    batch_size: int = settings["scheduler.batch_size"]
    lease_seconds: float = settings["scheduler.lease_seconds"]
    loops = [
        ActionLoop(
            runtime, runner, destination, action, stop, batch_size=batch_size,
            lease_seconds=lease_seconds, poll_seconds=settings["scheduler.poll_seconds"],
            action_lease_seconds=min(lease_seconds, float(settings["nodes.ttl_seconds"])),
            gate=(gates or {}).get((destination.name, action.name)),
            concurrency=(limits or {}).get((destination.name, action.name)),
        )
        for destination in runtime.pipeline.destinations.values()
        for action in destination.actions.values()
    ]
    tasks = [asyncio.create_task(loop.run(), name=f"scheduler {loop.name}") for loop in loops]
    consumer: RealtimeConsumer | None = None
    consumer_task: asyncio.Task[None] | None = None
    if runtime.pubsub is not None and any(loop.realtime for loop in loops):
        consumer = RealtimeConsumer(
            runtime, runner, runtime.pubsub, stop, batch_size=batch_size, lease_seconds=lease_seconds, gates=gates,
            limits=limits,
        )
        consumer_task = asyncio.create_task(consumer.run(), name="scheduler realtime")
    period = float(settings["nodes.heartbeat_seconds"]) if runtime.registry_shared else lease_seconds / 2
    recovery = asyncio.create_task(_recover_every(runtime, period, stop, loops), name="scheduler recovery")
    log.info("scheduler running: %d action(s), realtime %s", len(loops), "on" if consumer else "off")
    if on_ready is not None:
        on_ready(True)
    await stop.wait()
    if on_ready is not None:
        on_ready(False)

    log.info("scheduler stopping: %d load(s) running", runner.busy)
    recovery.cancel()
    working = [*tasks, *([asyncio.create_task(consumer.stop())] if consumer else [])]
    pending: set[asyncio.Task[None]] = set()
    if working:  # a pipeline without actions has nothing to wait for
        _, pending = await asyncio.wait(working, timeout=settings["scheduler.grace_seconds"])
    if pending:
        log.warning("grace period over: releasing the jobs of %d running load(s)", runner.cancel_loads())
        _, pending = await asyncio.wait(pending, timeout=RELEASE_SECONDS)
    for task in [*pending, *([consumer_task] if consumer_task else []), recovery]:
        task.cancel()
    for task in [*tasks, *([consumer_task] if consumer_task else []), recovery]:
        with suppress(asyncio.CancelledError, Exception):
            await task
    if pending:
        log.error("%d load(s) ignored cancellation; their jobs will be recovered after the lease", len(pending))
    log.info("scheduler stopped")


async def alive(runtime: Runtime) -> set[str] | None:
    """The ids of the nodes the shared registry lists as live, this one included; ``None``
    (recover by lease only) without a shared registry or when it cannot be read: an
    unreadable registry must not make every other node look dead."""
    if runtime.registry is None or not runtime.registry_shared:
        return None
    try:
        nodes = await runtime.registry.nodes()
    except Exception as exc:  # noqa: BLE001 - the lease still recovers
        log.warning("could not read the node registry (%s): recovering by claim lease only", exc)
        return None
    return {node.id for node in nodes} | {runtime.node_id}


async def recover(runtime: Runtime) -> list[Job]:
    """Record ``failed`` for jobs left ``executing`` past their lease or by a node not alive;
    discard those with no retry left. Return the recovered jobs."""
    now = datetime.now(UTC)
    jobs = await runtime.store.recover(now=now, alive=await alive(runtime))
    if not jobs:
        return []
    if metrics.enabled():
        metrics.CLAIM_RECOVERIES.inc(len(jobs))
    log.warning("recovered %d job(s) left executing by a scheduler that stopped", len(jobs))
    destinations = runtime.pipeline.destinations
    exhausted = [
        Transition(
            id=new_id(), job_id=job.id, event_id=job.event_id, attempt=job.attempt,
            state_before=Status.FAILED, state_after=Status.DISCARDED, created_at=now, error=RECOVERED,
        )
        for job in jobs
        if job.destination in destinations
        and job.action in destinations[job.destination].actions
        and job.attempt >= 1 + destinations[job.destination].schedule_of(job.action).max_retries
    ]
    if exhausted:
        stored(exhausted, await runtime.store.add_transitions(exhausted), "recovered jobs out of retries")
    return jobs


async def _recover_every(runtime: Runtime, period: float, stop: asyncio.Event, loops: list[ActionLoop]) -> None:
    """Recover every ``period``; wake the loops of the recovered jobs' actions (due at once)."""
    by_action = {(loop.destination.name, loop.action.name): loop for loop in loops}
    while not stop.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)
        if stop.is_set():
            return
        try:
            recovered = await recover(runtime)
        except Exception:
            log.exception("recovering jobs failed; retrying in %gs", period)
            continue
        for key in {(job.destination, job.action) for job in recovered}:
            if key in by_action:
                by_action[key].wake()


async def start_destinations(runtime: Runtime, runner: Runner) -> list[tuple[Destination, list[Action]]]:
    """Call ``init`` of every destination, then of its actions; return what started.

    :raises CoreError: naming what failed; what had started is shut down first.
    """
    started: list[tuple[Destination, list[Action]]] = []
    for destination in runtime.pipeline.destinations.values():
        what = f"destination {destination.name!r}"
        try:
            await destination.init(runner.toolkit(destination.name))
            actions: list[Action] = []
            started.append((destination, actions))
            for action in destination.actions.values():
                what = f"action {destination.name}.{action.name}"
                await action.init(runner.toolkit(destination.name, action.name))
                actions.append(action)
        except Exception as exc:
            await shutdown_destinations(started, runner)
            raise CoreError(
                f"the scheduler could not start: init of {what} failed: {error_text(exc)}",
                hint="fix the error above (a connection, a setting in [options]); nothing was loaded",
            ) from exc
    return started


async def shutdown_destinations(started: list[tuple[Destination, list[Action]]], runner: Runner) -> None:
    """Call ``shutdown`` of the started actions, then of their destination; log errors."""
    for destination, actions in reversed(started):
        for action in reversed(actions):
            try:
                await action.shutdown(runner.toolkit(destination.name, action.name))
            except Exception:
                log.exception("shutdown of action %s.%s failed", destination.name, action.name)
        try:
            await destination.shutdown(runner.toolkit(destination.name))
        except Exception:
            log.exception("shutdown of destination %s failed", destination.name)
    started.clear()
