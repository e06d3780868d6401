"""One load: claimed jobs in, transitions and child jobs recorded out.

The runner builds the :class:`~hookspecs.Queue` (the claimed jobs grouped by their events,
fetched in one query), calls the action's ``load`` under a timeout, decides every job's
transition (:mod:`core.scheduler.then`), stores the child jobs then the transitions (two
writes per load whatever its size), publishes realtime children, and tells the
``core_job_transitioned`` observers. Child jobs are written first: if the second write failed,
the jobs would be recovered and loaded again, which can duplicate a child but never lose one.

Poison isolation: the claimed jobs are loaded together, except those whose last failure named
no job (the load raised, timed out, or failed the whole queue): each of those is loaded alone,
at the same time as the others, so one poison event fails alone and the good events it was
batched with succeed at their retry. The runner remembers those ids in memory; a restarted
scheduler, or another node, batches them once more, then isolates them too.

Stop: once ``stopping`` is set, claimed jobs are released rather than loaded (no load starts
after the signal). A load cancelled by a shutdown (:meth:`Runner.cancel_loads`) releases its
jobs at once, even if the load ignores the cancellation: ``awaiting``, due at once, with the
attempt count they had before the claim, so a stop costs no retry and nothing is left
``executing``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from core.observability import logs, metrics, tracing
from core.observability.outage import Outage
from core.ready_jobs import encode
from core.runtime import Runtime
from core.scheduler.children import make_children, realtime_jobs
from core.scheduler.then import FollowUp, Outcome, decide
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
#: Most job ids a runner remembers to load alone (a bound on its memory; the oldest go first).
ISOLATED_MAX = 100_000


class LoadTimeout(Exception):
    """``load`` ran longer than ``scheduler.load_timeout``."""


#: What :meth:`Runner._attempt` returns for a load cancelled by a shutdown.
_CANCELLED = object()


class Runner:
    """Runs loads for the scheduler's loops and realtime consumer.

    :param load_timeout: seconds a ``load`` may run before its jobs fail.
    :param stopping: once set (the scheduler stops), claimed jobs are released, not loaded.
    """

    def __init__(self, runtime: Runtime, *, load_timeout: float, stopping: asyncio.Event | None = None) -> None:
        self.runtime = runtime
        self.load_timeout = load_timeout
        self.stopping = stopping or asyncio.Event()
        #: Running loads, each with what it loads (``destination.action, n job(s)``).
        self.loads: dict[asyncio.Task[Any], str] = {}
        self._abandon = asyncio.Event()
        self._isolated: dict[str, None] = {}
        self._toolkits: dict[str, Toolkit] = {}
        self._observed = bool(runtime.host.pm.hook.core_job_transitioned.get_hookimpls())
        self._durations: dict[tuple[str, str], Any] = {}
        self._states: dict[tuple[str, str, str], Any] = {}
        self._publish_failures = metrics.child(metrics.PUBLISH_FAILURES, "scheduler")
        self._publish_outage = Outage(log, "publishing child realtime jobs (the poll delivers what is not published)")

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
        """Cancel every running ``load`` (shutdown past its grace period) and release its jobs at
        once, whether or not the load honours the cancellation; return how many were running."""
        self._abandon.set()
        for task in self.loads:
            task.cancel()
        return len(self.loads)

    @property
    def busy(self) -> int:
        """How many loads are running."""
        return len(self.loads)

    async def run(
        self, destination: Destination, action: Action, jobs: Sequence[Job], *, retry_from: datetime | None = None,
        trace: Mapping[str, str] | None = None, events: Mapping[str, Event] | None = None,
    ) -> list[Transition]:
        """Load claimed ``jobs`` of one action and record the outcome; return the transitions.

        ``events`` may hold the jobs' events read already (:meth:`read_events`, while the jobs
        were claimed); the others are read now. Once the scheduler stops, claimed jobs are
        released instead: no load starts after the signal. With tracing, the load is a span
        whose parent is ``trace`` (the realtime message's context) or else the first event's,
        linked to the span of every job's event.
        """
        if not jobs:
            return []
        key = (destination.name, action.name)
        self._count(key, Status.EXECUTING, len(jobs))  # the claim's transitions
        if self.stopping.is_set():
            return await self._release(jobs, key)
        by_event = await self._events(jobs, events or {})
        first = jobs[0]
        fields = {"destination": destination.name, "action": action.name, "attempt": first.attempt}
        if len(jobs) == 1:
            fields |= {"job_id": first.id, "event_id": first.event_id}
        token = logs.CURRENT.set(fields)
        try:
            if not tracing.ON:
                return await self._load(destination, action, jobs, by_event, retry_from)
            carriers = [tracing.event_carrier(event.context) for event in by_event.values()]
            with tracing.tracer().start_as_current_span(
                f"load {destination.name}.{action.name}", context=tracing.context_of(trace or carriers[0]),
                kind=tracing.SpanKind.CONSUMER, links=tracing.links_of(carriers),
                attributes={"core.destination": destination.name, "core.action": action.name,
                            "core.jobs": len(jobs)},
            ):
                return await self._load(destination, action, jobs, by_event, retry_from)
        finally:
            logs.CURRENT.reset(token)

    async def _release(self, jobs: Sequence[Job], key: tuple[str, str]) -> list[Transition]:
        released = _released(jobs, datetime.now(UTC))
        refused = await self._write(self.runtime.store.add_transitions, released, f"release of {len(jobs)} job(s)")
        transitions = stored(released, refused, f"the release of {len(jobs)} job(s)")
        self._observe(transitions, key)
        return transitions

    def _groups(self, jobs: Sequence[Job]) -> list[list[Job]]:
        """The loads to run for claimed ``jobs``: the jobs together, except those whose last
        failure named no job (:attr:`Outcome.isolate`), each alone so a poison job fails alone."""
        alone = [job for job in jobs if job.id in self._isolated]
        together = [job for job in jobs if job.id not in self._isolated]
        return ([together] if together else []) + [[job] for job in alone]

    def _remember(self, outcome: Outcome) -> None:
        """Keep the ids to load alone (bounded: the oldest are forgotten first)."""
        isolate = set(outcome.isolate)
        for transition in outcome.transitions:
            self._isolated.pop(transition.job_id, None)
            if transition.job_id in isolate:
                self._isolated[transition.job_id] = None
        while len(self._isolated) > ISOLATED_MAX:
            del self._isolated[next(iter(self._isolated))]

    async def _load(
        self, destination: Destination, action: Action, jobs: Sequence[Job], events: dict[str, Event],
        retry_from: datetime | None,
    ) -> list[Transition]:
        """Run the loads of ``jobs`` (:meth:`_groups`, at once: each within ``load_timeout``, so
        the claim's lease holds), then record every job's outcome in one write."""
        store = self.runtime.store
        key = (destination.name, action.name)
        where = f"{destination.name}.{action.name}"
        toolkit = self.toolkit(destination.name, action.name)
        groups = self._groups(jobs)
        started = time.perf_counter()
        results = await asyncio.gather(*(
            self._attempt(action, toolkit, _queue(group, events), f"{where}, {len(group)} job(s)") for group in groups
        ))
        duration = self._durations.get(key)
        if duration is None:
            duration = self._durations[key] = metrics.child(metrics.LOAD_DURATION, *key)
        duration.observe(time.perf_counter() - started)
        now = datetime.now(UTC)
        schedule = destination.schedule_of(action.name)
        transitions: list[Transition] = []
        follow_ups: list[FollowUp] = []
        for group, result in zip(groups, results, strict=True):
            if result is _CANCELLED:
                transitions += _released(group, now)
                continue
            outcome = decide(group, result, schedule, now=now, retry_from=retry_from)
            for warning in outcome.warnings:
                log.warning("load of %s: %s", where, warning)
            self._remember(outcome)
            transitions += outcome.transitions
            follow_ups += outcome.follow_ups
        _log_outcome(where, transitions)
        if follow_ups:
            children = await make_children(
                self.runtime.pipeline, follow_ups, events, self.toolkit(destination.name),
                destination=destination.name, now=now,
            )
            if children:
                await self._write(store.add_jobs, children, f"{len(children)} child job(s) of {where}")
                await self._publish(realtime_jobs(self.runtime.pipeline, children))
        refused = await self._write(store.add_transitions, transitions, f"{len(jobs)} transition(s) of {where}")
        transitions = stored(transitions, refused, f"the load of {where}")
        self._observe(transitions, key)
        return transitions

    async def _attempt(self, action: Action, toolkit: Toolkit, queue: Queue, what: str) -> object:
        """One call of ``load``: what it returned, the exception it raised, a
        :class:`LoadTimeout`, or :data:`_CANCELLED` if a shutdown cancelled it."""
        task = asyncio.ensure_future(_call_load(action, toolkit, queue))
        task.add_done_callback(_retrieve)
        self.loads[task] = what
        abandon = asyncio.ensure_future(self._abandon.wait())
        try:
            done, _ = await asyncio.wait({task, abandon}, timeout=self.load_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # this runner was cancelled, not the load: leave the jobs to recovery
            task.cancel()
            raise
        finally:
            abandon.cancel()
            self.loads.pop(task, None)
        if task in done:
            if task.cancelled():
                return _CANCELLED
            return task.exception() or task.result()
        task.cancel()
        if abandon in done:
            return _CANCELLED
        return LoadTimeout(f"load() did not finish within {self.load_timeout:g}s (scheduler.load_timeout)")

    async def _publish(self, jobs: Sequence[Job]) -> None:
        """Tell realtime consumers about stored jobs; on failure the poll delivers them."""
        pubsub = self.runtime.pubsub
        if not jobs or pubsub is None:
            return
        try:
            await pubsub.publish(JOBS_TOPIC, encode(jobs, tracing.carrier() if tracing.ON else None))
        except Exception as exc:  # noqa: BLE001 - the broker is optional: the poll delivers them
            self._publish_failures.inc()
            self._publish_outage.failed(f"{len(jobs)} job(s) not published: {type(exc).__name__}: {exc}")
        else:
            self._publish_outage.recovered()

    async def read_events(self, ids: Sequence[str]) -> dict[str, Event]:
        """The events of ``ids`` found in the store (one query), by id."""
        if not ids:
            return {}
        found = await self.runtime.store.find_events(WhereEvent(ids=list(ids), page=Page(limit=len(ids))))
        return {event.id: event for event in found}

    async def _events(self, jobs: Sequence[Job], known: Mapping[str, Event]) -> dict[str, Event]:
        """The jobs' events (those not ``known`` in one query), each holding its jobs, in the
        order of the jobs.

        A store never purges the event of a job that is not final; should one miss anyway, its
        id alone stands in for it rather than leaving the claimed jobs ``executing``.
        """
        missing = [i for i in dict.fromkeys(job.event_id for job in jobs) if i not in known]
        by_id = await self.read_events(missing)
        events: dict[str, Event] = {}
        for job in jobs:
            event = events.get(job.event_id)
            if event is None:
                shared = known.get(job.event_id)  # read for another load too: a copy of its own
                event = replace(shared, jobs=[]) if shared is not None else by_id.get(job.event_id) or Event(
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


def _queue(jobs: Sequence[Job], events: Mapping[str, Event]) -> Queue:
    """The queue of one load: the events of ``jobs``, each holding only its jobs among them."""
    if len(jobs) == sum(len(event.jobs) for event in events.values()):
        return Queue(events=list(events.values()))
    mine: dict[str, list[Job]] = {}
    for job in jobs:
        mine.setdefault(job.event_id, []).append(job)
    return Queue(events=[replace(events[event_id], jobs=found) for event_id, found in mine.items()])


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Read the outcome of a load left behind (timed out, cancelled): no "never retrieved" log."""
    if not task.cancelled():
        task.exception()


async def _call_load(action: Action, toolkit: Toolkit, queue: Queue) -> object:
    """Call ``load``; a plain (non-async) ``load`` is accepted too."""
    result: object = action.load(toolkit, queue)
    if inspect.isawaitable(result):
        result = await result
    return result
