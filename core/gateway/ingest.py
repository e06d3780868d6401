"""The ingest path shared by every trigger: drafts become events, flows pick actions, each
action's ``marshal`` builds a job, and the events with their jobs go to the store in ONE
``insert_queue`` call. Only after that commit are observers told and realtime jobs published.

A draft with an idempotency key (its own, or the request's ``Idempotency-Key``) becomes an
event under that key, which the store deduplicates (:class:`~hookspecs.IdempotencyKey`):
a duplicate is answered with the original event's id, and nothing of it is told or published.

A disabled flow (:mod:`core.gateway.disabled`) makes no jobs: the event is stored with the jobs
of its other flows, or with none.

A marshal (or flow transform) that raises costs the jobs it would have made, never the event:
the error is logged and returned in :attr:`Ingested.errors`. Realtime jobs are handed to the
:class:`~core.gateway.publisher.Publisher` once committed; a publish that fails costs nothing
either: the job is stored, so the scheduler's schedule delivers it.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from core.gateway.disabled import DisabledFlows
from core.gateway.publisher import Publisher
from core.gateway.storable import check_events, storable
from core.observability import metrics, tracing
from core.pipeline import Pipeline
from core.runtime import Runtime
from hookspecs import (
    Action,
    Destination,
    Duplicate,
    Event,
    EventDraft,
    Flow,
    IdempotencyKey,
    Job,
    Page,
    Payload,
    Queue,
    StoreUnavailable,
    Toolkit,
    WhereJob,
    new_id,
)

log = logging.getLogger("core.gateway")


@dataclass(slots=True)
class Ingested:
    """What one ingest call stored, the marshal errors it reports, and the events the store
    did not store because their idempotency key was taken (``duplicates``)."""

    events: list[Event]
    errors: list[dict[str, str]] = field(default_factory=list)
    realtime: list[Job] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    #: Job ids of the original events of the duplicates (what the first request answered).
    replayed_job_ids: list[str] = field(default_factory=list)

    @property
    def event_ids(self) -> list[str]:
        """The id of each event of the call; a duplicate's is its original's."""
        if not self.duplicates:
            return [event.id for event in self.events]
        originals = {duplicate.event_id: duplicate.original_id for duplicate in self.duplicates}
        return [originals.get(event.id, event.id) for event in self.events]

    @property
    def stored(self) -> list[Event]:
        """The events this call stored."""
        skipped = {duplicate.event_id for duplicate in self.duplicates}
        return [event for event in self.events if event.id not in skipped] if skipped else self.events

    @property
    def job_ids(self) -> list[str]:
        if not self.duplicates:
            return [job.id for event in self.events for job in event.jobs]
        return [job.id for event in self.stored for job in event.jobs] + self.replayed_job_ids

    @property
    def conflict(self) -> Duplicate | None:
        """A duplicate whose key was used for a different request: then nothing was stored."""
        if not self.duplicates:
            return None
        return next((duplicate for duplicate in self.duplicates if not duplicate.same), None)

    @property
    def replayed(self) -> bool:
        """Was every event of the call a retry of one stored before?"""
        return bool(self.duplicates) and len(self.duplicates) == len(self.events) and self.conflict is None


@dataclass(frozen=True, slots=True)
class _Target:
    """An action as the hot path needs it: resolved once, with its toolkit and schedule."""

    ref: str
    destination: Destination
    action: Action
    toolkit: Toolkit
    realtime: bool
    default_marshal: bool


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Ingestor:
    """Stores drafts of one runtime's sources; one instance serves every trigger."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pipeline: Pipeline = runtime.pipeline
        self.store = runtime.store
        self.publisher = None if runtime.pubsub is None else Publisher(runtime.pubsub)
        self._targets: dict[str, _Target] = {}
        self._observed = bool(runtime.host.pm.hook.core_event_ingested.get_hookimpls())
        self._stored: dict[tuple[str, str, str], Any] = {}
        self.idempotency_window = timedelta(seconds=float(runtime.settings["gateway.idempotency_window"]))
        self.disabled = DisabledFlows(runtime.store, float(runtime.settings["gateway.flow_refresh_seconds"]))

    def _target(self, ref: str) -> _Target:
        target = self._targets.get(ref)
        if target is None:
            destination, action = self.pipeline.action(ref)
            target = self._targets[ref] = _Target(
                ref=ref,
                destination=destination,
                action=action,
                toolkit=self.runtime.toolkit(f"{destination.name}.{action.name}", service="gateway"),
                realtime=destination.schedule_of(action.name).realtime,
                default_marshal=type(action).marshal is Action.marshal,
            )
        return target

    def _event(
        self, source: str, trigger: str, draft: EventDraft, received_at: datetime, trace: dict[str, str] | None,
        key: IdempotencyKey | None,
    ) -> Event:
        """An event for ``draft``: a new id, the trigger's name unless the draft names it; with
        tracing, the trace context it was received in, in its ``context``."""
        return Event(
            id=new_id(),
            source=source,
            name=draft.name or trigger,
            context=draft.context if trace is None else {**draft.context, tracing.CONTEXT_KEY: trace},
            data=draft.data,
            received_at=received_at,
            sent_at=draft.sent_at,
            idempotency=key,
        )

    def _keys(
        self, drafts: Sequence[EventDraft], request_key: str | None, fingerprint: str | None, now: datetime
    ) -> list[IdempotencyKey | None]:
        """The idempotency key of each draft: its own, fingerprinted by its content; else the
        request's (``#<index>`` appended in a batch), fingerprinted by the request body."""
        expires_at = now + self.idempotency_window
        keys: list[IdempotencyKey | None] = []
        for index, draft in enumerate(drafts):
            if draft.idempotency_key is not None:
                content = orjson.dumps([draft.name, draft.context, draft.data], option=orjson.OPT_SORT_KEYS)
                keys.append(IdempotencyKey(draft.idempotency_key, hashlib.sha256(content).hexdigest(), expires_at))
            elif request_key is not None:
                key = request_key if len(drafts) == 1 else f"{request_key}#{index}"
                keys.append(IdempotencyKey(key, fingerprint or "", expires_at))
            else:
                keys.append(None)
        return keys

    async def ingest(
        self,
        source: str,
        trigger: str,
        drafts: Sequence[EventDraft],
        *,
        received_at: datetime | None = None,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> Ingested:
        """Store ``drafts`` as events with their jobs (all or nothing), then publish.

        ``idempotency_key`` (the request's) applies to drafts without a key of their own, with
        ``fingerprint`` (the request body's hash). Events whose key the store holds are not
        stored: see :attr:`Ingested.duplicates` (and :attr:`Ingested.conflict`: nothing stored).
        Raises :class:`~hookspecs.StoreUnavailable` when the store fails, and
        :class:`~core.gateway.storable.Unstorable` (a :class:`~hookspecs.Rejected`) for a value
        it could not write as JSON: nothing was stored.
        """
        now = received_at or datetime.now(UTC)
        trace = (tracing.carrier() or None) if tracing.ON else None
        keys = (self._keys(drafts, idempotency_key, fingerprint, now)
                if idempotency_key is not None or any(d.idempotency_key is not None for d in drafts)
                else [None] * len(drafts))
        result = Ingested(events=[
            self._event(source, trigger, draft, now, trace, key) for draft, key in zip(drafts, keys, strict=True)])
        check_events(result.events)  # a value the store cannot write is the sender's 400, not an outage
        disabled = await self.disabled.names()
        for event in result.events:
            for flow in self.pipeline.flows_for(source, trigger, event.name):
                if flow.name not in disabled:
                    await self._run_flow(flow, event, now, result)
        if not result.events:
            return result
        ingested_at = datetime.now(UTC)
        for event in result.events:
            event.ingested_at = ingested_at
        if tracing.ON:
            with tracing.tracer().start_as_current_span(
                "core.store commit", attributes={"core.events": len(result.events), "core.jobs": len(result.job_ids)}
            ):
                await self._commit(result)
        else:
            await self._commit(result)
        if result.duplicates:
            return await self._deduplicated(source, trigger, result, trace)
        self._count(source, trigger, "stored", len(result.events))
        self._after_commit(result, trace)
        return result

    def _count(self, source: str, trigger: str, outcome: str, count: int) -> None:
        counter = self._stored.get((source, trigger, outcome))
        if counter is None:
            counter = self._stored[(source, trigger, outcome)] = metrics.child(
                metrics.EVENTS_INGESTED, source, trigger, outcome)
        counter.inc(count)

    async def _deduplicated(
        self, source: str, trigger: str, result: Ingested, trace: dict[str, str] | None
    ) -> Ingested:
        """Count, tell and publish only what was stored; find the originals' jobs for the answer."""
        if result.conflict is not None:
            self._count(source, trigger, "rejected", len(result.events))
            return result
        self._count(source, trigger, "duplicate", len(result.duplicates))
        stored = result.stored
        self._count(source, trigger, "stored", len(stored))
        stored_jobs = {job.id for event in stored for job in event.jobs}
        result.realtime = [job for job in result.realtime if job.id in stored_jobs]
        originals = [duplicate.original_id for duplicate in result.duplicates]
        try:
            found = await self.store.find_jobs(WhereJob(event_ids=originals, page=Page(limit=10_000)))
        except StoreUnavailable:
            found = []  # the events are stored; only the answer's job ids are missing
        result.replayed_job_ids = [job.id for job in found]
        if stored:
            self._after_commit(Ingested(events=stored, realtime=result.realtime), trace)
        return result

    async def _commit(self, result: Ingested) -> None:
        try:
            result.duplicates = await self.store.insert_queue(Queue(events=result.events)) or []
        except StoreUnavailable:
            raise
        except Exception as exc:
            raise StoreUnavailable(f"the store failed to save the events: {_describe(exc)}") from exc

    async def _run_flow(self, flow: Flow, event: Event, now: datetime, result: Ingested) -> None:
        """Add to ``event.jobs`` the jobs of ``flow``'s actions; record what failed."""
        subject = event
        if flow.transform is not None:
            try:
                transformed = await self._transform(flow, event)
            except Exception as exc:
                log.exception("flow %r: transform failed for event %s", flow.name, event.id)
                result.errors.extend(self._error(event, flow, ref, exc) for ref in flow.actions)
                return
            if transformed is None:
                return
            subject = transformed
        key = None if event.idempotency is None else event.idempotency.key
        for ref in flow.actions:
            target = self._target(ref)
            job_id = new_id()
            try:
                payload = self._marshal(target, subject, job_id, key)
                if inspect.isawaitable(payload):
                    payload = await payload
                if payload is None:
                    continue
                if not isinstance(payload, Payload):
                    raise TypeError(f"marshal returned {payload!r}, not a Payload or None")
                if not (subject is event and payload.data is event.data and payload.context is None):
                    storable("the job's payload", payload.data, payload.context)  # else checked with the event
            except Exception as exc:
                target.toolkit.logger.exception("marshal failed for event %s (flow %r)", event.id, flow.name)
                result.errors.append(self._error(event, flow, ref, exc))
                continue
            job = Job(
                id=job_id,
                destination=target.destination.name,
                action=target.action.name,
                event_id=event.id,
                context=subject.context if payload.context is None else payload.context,
                data=payload.data,
                created_at=now,
                version=payload.version,
                idempotency_key=key,
            )
            job.ordering_key = target.action.ordering_key_for(job)
            event.jobs.append(job)
            if target.realtime:
                result.realtime.append(job)

    @staticmethod
    async def _transform(flow: Flow, event: Event) -> Event | None:
        """Run the flow's transform on a copy: the stored event stays the one received."""
        assert flow.transform is not None
        copied = replace(event, context=copy.deepcopy(event.context), data=copy.deepcopy(event.data), jobs=[])
        transformed: Any = flow.transform(copied)
        if inspect.isawaitable(transformed):
            transformed = await transformed
        if transformed is not None and not isinstance(transformed, Event):
            raise TypeError(f"transform returned {transformed!r}, not an Event or None")
        return transformed

    @staticmethod
    def _marshal(target: _Target, event: Event, job_id: str, key: str | None) -> Any:
        if target.default_marshal:
            return Payload(data=event.data)
        return target.action.marshal(event, target.toolkit.evolve(event_id=event.id, job_id=job_id,
                                                                   idempotency_key=key or ""))

    @staticmethod
    def _error(event: Event, flow: Flow, ref: str, exc: BaseException) -> dict[str, str]:
        return {"event_id": event.id, "flow": flow.name, "action": ref, "error": _describe(exc)}

    def _after_commit(self, result: Ingested, trace: dict[str, str] | None = None) -> None:
        """Tell observers, then hand realtime jobs to the publisher; neither can lose what is committed."""
        if self._observed:
            try:
                self.runtime.host.pm.hook.core_event_ingested(events=result.events)
            except Exception:
                log.exception("a core_event_ingested hook failed (the events are stored)")
        if self.publisher is not None and result.realtime:
            self.publisher.offer(result.realtime, trace)

    async def close(self) -> None:
        """Publish the realtime jobs still waiting (bounded), then stop publishing."""
        if self.publisher is not None:
            await self.publisher.close()
