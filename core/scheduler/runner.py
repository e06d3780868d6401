"""One load: claimed jobs in, transitions and child jobs recorded out.

The runner builds the :class:`~hookspecs.Queue` (the claimed jobs grouped by their events,
fetched in one query), calls the action's ``load`` under a timeout, decides every job's
transition (:mod:`core.scheduler.then`), stores the child jobs then the transitions (two
writes per load whatever its size), publishes realtime children, and tells the
``core_job_transitioned`` observers. Child jobs are written first: if the second write failed,
the jobs would be recovered and loaded again, which can duplicate a child but never lose one.

A load cancelled by a shutdown (:meth:`Runner.cancel_loads`) releases its jobs: ``awaiting``,
due at once, with the attempt count they had before the claim, so a stop costs no retry and
nothing is left ``executing``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from core.observability import logs, metrics, tracing
from core.ready_jobs import encode
from core.runtime import Runtime
from core.scheduler.children import make_children, realtime_jobs
from core.scheduler.then import decide
from hookspecs import (
    JOBS_TOPIC,
    Action,
    Destination,
    Event,
    Job,
    Page,
    Queue,
    RefusedTransition,
    Status,
    Toolkit,
    Transition,
    WhereEvent,
    new_id,
)

log = logging.getLogger("core.scheduler")
T = TypeVar("T")
R = TypeVar("R")

RELEASED = "released: the scheduler stopped before the load finished"
#: Delays between attempts of a store write that failed (then the jobs wait for recovery).
WRITE_RETRIES = (0.2, 1.0, 3.0)


class LoadTimeout(Exception):
    """``load`` ran longer than ``scheduler.load_timeout``."""


class Runner:
    """Runs loads for the scheduler's loops and realtime consumer.

    :param load_timeout: seconds a ``load`` may run before its jobs fail.
    """

    def __init__(self, runtime: Runtime, *, load_timeout: float) -> None:
        self.runtime = runtime
        self.load_timeout = load_timeout
        self._loads: set[asyncio.Task[Any]] = set()
        self._toolkits: dict[str, Toolkit] = {}
        self._observed = bool(runtime.host.pm.hook.core_job_transitioned.get_hookimpls())
        self._durations: dict[tuple[str, str], Any] = {}
        self._states: dict[tuple[str, str, str], Any] = {}
        self._publish_failures = metrics.child(metrics.PUBLISH_FAILURES, "scheduler")

    def toolkit(self, destination: str, action: str = "") -> Toolkit:
        """The toolkit of a destination (or one of its actions) in the scheduler."""
        name = f"{destination}.{action}" if action else destination
        toolkit = self._toolkits.get(name)
        if toolkit is None:
            toolkit = self.runtime.toolkit(destination, service="scheduler").evolve(
                logger=logging.getLogger(f"core.{name}")
            )
            self._toolkits[name] = toolkit
        return toolkit

    def cancel_loads(self) -> int:
        """Cancel every running ``load`` (shutdown past its grace period); return how many."""
        for task in self._loads:
            task.cancel()
        return len(self._loads)

    @property
    def busy(self) -> int:
        """How many loads are running."""
        return len(self._loads)

    async def run(
        self, destination: Destination, action: Action, jobs: Sequence[Job], *, retry_from: datetime | None = None,
        trace: Mapping[str, str] | None = None,
    ) -> list[Transition]:
        """Load claimed ``jobs`` of one action and record the outcome; return the transitions.

        With tracing, the load is a span whose parent is ``trace`` (the realtime message's
        context) or else the first event's, linked to the span of every job's event.
        """
        if not jobs:
            return []
        self._count((destination.name, action.name), Status.EXECUTING, len(jobs))  # the claim's transitions
        events = await self._events(jobs)
        first = jobs[0]
        fields = {"destination": destination.name, "action": action.name, "attempt": first.attempt}
        if len(jobs) == 1:
            fields |= {"job_id": first.id, "event_id": first.event_id}
        token = logs.CURRENT.set(fields)
        try:
            if not tracing.ON:
                return await self._load(destination, action, jobs, events, retry_from)
            carriers = [tracing.event_carrier(event.context) for event in events.values()]
            with tracing.tracer().start_as_current_span(
                f"load {destination.name}.{action.name}", context=tracing.context_of(trace or carriers[0]),
                kind=tracing.SpanKind.CONSUMER, links=tracing.links_of(carriers),
                attributes={"core.destination": destination.name, "core.action": action.name,
                            "core.jobs": len(jobs)},
            ):
                return await self._load(destination, action, jobs, events, retry_from)
        finally:
            logs.CURRENT.reset(token)

    async def _load(
        self, destination: Destination, action: Action, jobs: Sequence[Job], events: dict[str, Event],
        retry_from: datetime | None,
    ) -> list[Transition]:
        store = self.runtime.store
        queue = Queue(events=list(events.values()))
        toolkit = self.toolkit(destination.name, action.name)
        task = asyncio.ensure_future(_call_load(action, toolkit, queue))
        self._loads.add(task)
        result: object
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(asyncio.shield(task), self.load_timeout)
        except TimeoutError:
            task.cancel()
            result = LoadTimeout(f"load() did not finish within {self.load_timeout:g}s (scheduler.load_timeout)")
        except asyncio.CancelledError:
            if not task.cancelled():  # this runner was cancelled, not the load: leave the jobs to recovery
                task.cancel()
                raise
            result = None
        except Exception as exc:  # noqa: BLE001 - any error of a user's load fails its jobs
            result = exc
        finally:
            self._loads.discard(task)
        key = (destination.name, action.name)
        duration = self._durations.get(key)
        if duration is None:
            duration = self._durations[key] = metrics.child(metrics.LOAD_DURATION, *key)
        duration.observe(time.perf_counter() - started)
        now = datetime.now(UTC)
        where = f"{destination.name}.{action.name}"
        if task.cancelled():
            released = _released(jobs, now)
            refused = await self._write(store.add_transitions, released, f"release of {len(jobs)} job(s)")
            transitions = stored(released, refused, f"release of {where}")
            self._observe(transitions, key)
            return transitions
        schedule = destination.schedule_of(action.name)
        outcome = decide(jobs, result, schedule, now=now, retry_from=retry_from)
        for warning in outcome.warnings:
            log.warning("load of %s: %s", where, warning)
        _log_outcome(where, outcome.transitions)
        if outcome.follow_ups:
            children = await make_children(
                self.runtime.pipeline, outcome.follow_ups, events, self.toolkit(destination.name),
                destination=destination.name, now=now,
            )
            if children:
                await self._write(store.add_jobs, children, f"{len(children)} child job(s) of {where}")
                await self._publish(realtime_jobs(self.runtime.pipeline, children))
        refused = await self._write(store.add_transitions, outcome.transitions, f"{len(jobs)} transition(s) of {where}")
        transitions = stored(outcome.transitions, refused, f"the load of {where}")
        self._observe(transitions, key)
        return transitions

    async def _publish(self, jobs: Sequence[Job]) -> None:
        """Tell realtime consumers about stored jobs; on failure the poll delivers them."""
        pubsub = self.runtime.pubsub
        if not jobs or pubsub is None:
            return
        try:
            await pubsub.publish(JOBS_TOPIC, encode(jobs, tracing.carrier() if tracing.ON else None))
        except Exception as exc:  # noqa: BLE001 - the broker is optional: the poll delivers them
            self._publish_failures.inc()
            log.warning("could not publish %d realtime job(s) (%s); the poll will deliver them", len(jobs), exc)

    async def _events(self, jobs: Sequence[Job]) -> dict[str, Event]:
        """The jobs' events (one query), each holding its jobs, in the order of the jobs.

        A store never purges the event of a job that is not final; should one miss anyway, its
        id alone stands in for it rather than leaving the claimed jobs ``executing``.
        """
        ids = list(dict.fromkeys(job.event_id for job in jobs))
        found = await self.runtime.store.find_events(WhereEvent(ids=ids, page=Page(limit=len(ids))))
        by_id = {event.id: event for event in found}
        events: dict[str, Event] = {}
        for job in jobs:
            event = events.get(job.event_id)
            if event is None:
                event = by_id.get(job.event_id) or Event(
                    id=job.event_id, source="", name="", context={}, data=None, received_at=job.created_at
                )
                event.jobs = []
                events[job.event_id] = event
            event.jobs.append(job)
        return events

    async def _write(self, write: Callable[[Sequence[T]], Awaitable[R]], items: Sequence[T], what: str) -> R:
        """Store ``items`` and return what the store answered, retrying a few times; after that
        the error propagates (the jobs stay ``executing`` and are recovered when their claim
        lease runs out)."""
        for delay in WRITE_RETRIES:
            try:
                return await write(items)
            except Exception as exc:  # noqa: BLE001 - any store error: retried, then raised by the last try
                log.warning("storing %s failed (%s); retrying in %gs", what, exc, delay)
                await asyncio.sleep(delay)
        return await write(items)

    def _count(self, key: tuple[str, str], state: Status, count: int) -> None:
        counter = self._states.get((*key, state))
        if counter is None:
            counter = self._states[(*key, state)] = metrics.child(metrics.JOBS_TRANSITIONED, *key, state.value)
        counter.inc(count)

    def _observe(self, transitions: list[Transition], key: tuple[str, str]) -> None:
        """Count the transitions, then call the ``core_job_transitioned`` observers (errors logged)."""
        for state, count in Counter(t.state_after for t in transitions).items():
            self._count(key, state, count)
        if not self._observed or not transitions:
            return
        try:
            self.runtime.host.pm.hook.core_job_transitioned(transitions=transitions)
        except Exception:
            log.exception("a core_job_transitioned hook failed")


def stored(transitions: list[Transition], refused: Sequence[RefusedTransition], what: str) -> list[Transition]:
    """The ``transitions`` the store accepted. A refused one means its job moved on meanwhile
    (say, recovered and claimed by another scheduler after this one's lease ran out): it is
    counted and logged, never forced; the job's current holder decides its outcome."""
    if not refused:
        return transitions
    if metrics.enabled():
        metrics.TRANSITIONS_REFUSED.inc(len(refused))
    log.warning("the store refused %d transition(s) of %s (their jobs moved on meanwhile): %s",
                len(refused), what, refused[0].reason)
    dropped = {r.transition.id for r in refused}
    return [t for t in transitions if t.id not in dropped]


def _log_outcome(where: str, transitions: Sequence[Transition]) -> None:
    """One line per load that did not fully succeed: counts by status and the first error."""
    counts = Counter(t.state_after for t in transitions if t.state_after != Status.SUCCEEDED)
    if counts:
        first = next(t.error for t in transitions if t.state_after != Status.SUCCEEDED)
        summary = ", ".join(f"{n} {status.value}" for status, n in counts.items())
        log.warning("load of %s: %s of %d job(s): %s", where, summary, len(transitions), first)


def _released(jobs: Sequence[Job], now: datetime) -> list[Transition]:
    """``awaiting`` transitions, due now, for jobs whose load was cancelled by a shutdown: the
    interrupted attempt is given back (the next claim counts it again)."""
    return [
        Transition(
            id=new_id(), job_id=job.id, event_id=job.event_id, attempt=max(job.attempt - 1, 0),
            state_before=Status.EXECUTING, state_after=Status.AWAITING, created_at=now, error=RELEASED, due_at=now,
        )
        for job in jobs
    ]


async def _call_load(action: Action, toolkit: Toolkit, queue: Queue) -> object:
    """Call ``load``; a plain (non-async) ``load`` is accepted too."""
    result: object = action.load(toolkit, queue)
    if inspect.isawaitable(result):
        result = await result
    return result
