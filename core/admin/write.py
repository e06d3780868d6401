"""The admin API's write routes: retry (redrive) jobs, replay stored events into an action,
explain (dry-run) an event. Writes append to the history, never edit it.

A retry appends an ``awaiting`` transition due now to each job, as ``core jobs retry`` does;
the transition's note (its ``error`` text) says who retried it and why. A bulk retry or replay
reads the matches a page at a time (bounded memory) and writes each page before the next.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from core.admin import filters
from core.admin.endpoints import Call, Endpoint, path_param
from core.admin.errors import ApiError
from core.admin.read import action_of, destination_of
from core.admin.redrive import RETRYABLE, redrive
from core.errors import PipelineError
from core.gateway.ingest import Ingested, Ingestor
from hookspecs import Event, Job, Pause, PausingStore, Payload, WhereJob, new_id

#: Refusals listed in a response at most (the count says how many in all).
LISTED = 100
REASON = {"type": "string", "maxLength": 1000, "description": "why: recorded in the history"}
_STR_LIST = {"type": "array", "items": {"type": "string"}}


def reason_of(call: Call) -> str | None:
    """The body's optional ``reason`` (a string)."""
    reason = call.body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ApiError(422, "reason must be a string")
    return reason or None


def note(verb: str, call: Call) -> str:
    """``retried by ops: destination fixed``: who did a write and why, for the history."""
    reason = reason_of(call)
    return f"{verb} by {call.who}" + (f": {reason}" if reason else "")


def _where(call: Call) -> dict[str, Any]:
    where = call.body.get("where", {})
    if not isinstance(where, dict):
        raise ApiError(422, 'where must be an object of filters, e.g. {"status_in": "discarded"}')
    return where


def _ids(call: Call) -> list[str] | None:
    ids = call.body.get("ids")
    if ids is None:
        return None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ApiError(422, "ids must be a non-empty list of ids")
    return list(dict.fromkeys(ids))


def selection(call: Call) -> tuple[list[str] | None, filters.JobFilter]:
    """The jobs a retry body names: its ``ids``, or its ``where`` filters (failed, discarded or
    unknown jobs unless ``where.status_in`` says which of those); 4xx for a bad body."""
    ids, where = _ids(call), _where(call)
    if (ids is None) == (not where):
        raise ApiError(422, "give ids (a list of job ids) or where (job filters), one of them")
    if ids is not None:
        return ids, filters.JobFilter(WhereJob(ids=ids))
    unknown = sorted(set(where) - filters.JOB_FILTER_NAMES)
    if unknown:
        raise ApiError(422, f"where: unknown filter {', '.join(unknown)}", allowed=sorted(filters.JOB_FILTER_NAMES))
    chosen = filters.job_filter(where)
    wrong = [s.value for s in chosen.where.status_in if s not in RETRYABLE]
    if wrong:
        raise ApiError(400, f"status_in: {', '.join(wrong)} jobs are not retried", allowed=[s.value for s in RETRYABLE])
    if not chosen.where.status_in:
        chosen = replace(chosen, where=replace(chosen.where, status_in=list(RETRYABLE)))
    return None, chosen


def no_match(ids: list[str] | None) -> ApiError:
    """The 404 of a retry that matched no job."""
    return ApiError(
        404,
        "no job matches" + (" those ids" if ids is not None else " the filter"),
        hint="list them first: GET /admin/api/store/jobs with the same filters",
    )


async def retry_jobs(call: Call) -> Any:
    """Retry jobs named by ``ids``, or every job matching ``where``, page by page
    (:func:`~core.admin.redrive.redrive`)."""
    ids, chosen = selection(call)
    dry = bool(call.body.get("dry_run"))
    done = await redrive(call.runtime.store, chosen, note("retried", call), dry_run=dry)
    if ids is not None:
        done.refuse([f"{i}: no such job" for i in ids if i not in done.seen])
    if not done.matched:
        raise no_match(ids)
    return {
        "matched": done.matched,
        "retried": done.retried,
        "dry_run": dry,
        "refused_count": done.refused_count,
        "refused": done.refused,
        "by": call.who,
    }


def _target(call: Call, ref: Any) -> str:
    if not isinstance(ref, str) or not ref:
        raise ApiError(422, "to must name an action: destination.action")
    try:
        destination, action = call.runtime.pipeline.action(ref)
    except PipelineError as exc:
        known = sorted(f"{d.name}.{a}" for d in call.runtime.pipeline.destinations.values() for a in d.actions)
        raise ApiError(400, f"to: {exc.message}", allowed=known) from None
    return f"{destination.name}.{action.name}"


async def _marshal(ingestor: Ingestor, ref: str, event: Event) -> Job | None:
    """A new job of ``ref`` for stored ``event``, made by the action's marshal (``None``: skipped)."""
    target = ingestor._target(ref)
    created = datetime.now(UTC)  # before the id: a job's id never sorts before its created_at
    job_id = new_id()
    payload = ingestor._marshal(target, event, job_id, None)
    if inspect.isawaitable(payload):
        payload = await payload
    if payload is None:
        return None
    if not isinstance(payload, Payload):
        raise TypeError(f"marshal returned {payload!r}, not a Payload or None")
    job = Job(
        id=job_id,
        destination=target.destination.name,
        action=target.action.name,
        event_id=event.id,
        context=event.context if payload.context is None else payload.context,
        data=payload.data,
        created_at=created,
        version=payload.version,
    )
    job.ordering_key = target.action.ordering_key_for(job)
    return job


async def replay_events(call: Call) -> Any:
    """Replay stored events (``ids``, or every event matching ``where``) into action ``to``:
    one new job each, of the original event, made by the action's marshal."""
    ref = _target(call, call.body.get("to"))
    ids, where = _ids(call), _where(call)
    if ids is not None and where:
        raise ApiError(422, "give ids or where, not both")
    allowed = {p.name for p in filters.EVENT_PARAMS}
    unknown = sorted(set(where) - allowed)
    if unknown:
        raise ApiError(422, f"where: unknown filter {', '.join(unknown)}", allowed=sorted(allowed))
    chosen = filters.event_filter({"ids_in": ids} if ids is not None else where)
    ingestor, dry = Ingestor(call.runtime), bool(call.body.get("dry_run"))
    matched, created, errors = 0, 0, []
    async for page in filters.every(call.runtime.store.find_events, chosen, lambda _: True):
        matched += len(page)
        jobs = []
        for event in page:
            try:
                job = await _marshal(ingestor, ref, event)
            except Exception as exc:  # noqa: BLE001 - a marshal that fails costs that job, reported
                errors.append({"event_id": event.id, "error": f"{type(exc).__name__}: {exc}"})
                continue
            if job is not None:
                jobs.append(job)
        if jobs and not dry:
            await call.runtime.store.add_jobs(jobs)
        created += len(jobs)
    if not matched:
        raise ApiError(
            404,
            "no stored event matches" + (" those ids" if ids is not None else " the filter"),
            hint="list them first: GET /admin/api/store/events",
        )
    return {
        "matched": matched,
        "created": created,
        "dry_run": dry,
        "to": ref,
        "errors": errors[:LISTED],
        "error_count": len(errors),
        "by": call.who,
    }


async def explain(call: Call) -> Any:
    """Which jobs an event would create (flows, transforms, marshals; disabled flows make none),
    storing nothing."""
    return await explain_with(call, await Ingestor(call.runtime).disabled.names())


async def explain_with(call: Call, disabled: frozenset[str]) -> Any:
    """:func:`explain` with the disabled flows given (``core explain`` reads them itself: it
    opens the store only when there is one)."""
    pipeline = call.runtime.pipeline
    source, trigger = call.body.get("source"), call.body.get("trigger")
    if source not in pipeline.sources:
        raise ApiError(400, f"source: {source!r} is not a source of the pipeline", allowed=sorted(pipeline.sources))
    if trigger not in pipeline.sources[source].triggers:
        raise ApiError(
            400,
            f"trigger: {trigger!r} is not a trigger of source {source!r}",
            allowed=sorted(pipeline.sources[source].triggers),
        )
    event = call.body.get("event", {})
    if not isinstance(event, dict) or not isinstance(event.get("context", {}), dict):
        raise ApiError(422, "event must be an object {name?, context?, data}")
    name = event.get("name") or trigger
    if not isinstance(name, str):
        raise ApiError(422, "event.name must be a string")
    now = datetime.now(UTC)
    stored = Event(
        id=new_id(), source=source, name=name, context=event.get("context", {}), data=event.get("data"), received_at=now
    )
    ingestor, result = Ingestor(call.runtime), Ingested(events=[stored])
    flows = pipeline.flows_for(source, trigger, name)
    for flow in flows:
        if flow.name not in disabled:
            await ingestor._run_flow(flow, stored, now, result)
    return {
        "flows": [f.name for f in flows if f.name not in disabled],
        "disabled_flows": [f.name for f in flows if f.name in disabled],
        "jobs": stored.jobs,
        "errors": result.errors,
    }


def _paused_target(call: Call) -> tuple[str, str]:
    if "action" in call.path:
        destination, action = action_of(call)
        return destination.name, action
    return destination_of(call).name, "*"


def _shown(destination: str, action: str) -> str:
    return destination if action == "*" else f"{destination}.{action}"


async def pause(call: Call) -> Any:
    """Pause an action or a whole destination: no scheduler claims its jobs until resumed."""
    destination, action = _paused_target(call)
    store = call.runtime.store
    if not isinstance(store, PausingStore):
        raise ApiError(409, f"the store {type(store).__name__} cannot pause actions")
    done = await store.pause(
        Pause(
            destination=destination, action=action, who=call.who, created_at=datetime.now(UTC), reason=reason_of(call)
        )
    )
    if not done:
        raise ApiError(409, f"{_shown(destination, action)} is paused already", hint="resume it first")
    return {"paused": _shown(destination, action), "by": call.who, "reason": reason_of(call)}


async def resume(call: Call) -> Any:
    """Resume a paused action or destination: its backlog drains on the next ticks."""
    destination, action = _paused_target(call)
    store = call.runtime.store
    if not isinstance(store, PausingStore) or not await store.resume(destination, action):
        raise ApiError(409, f"{_shown(destination, action)} is not paused")
    return {"resumed": _shown(destination, action), "by": call.who}


_TARGETS = {"ids": _STR_LIST, "reason": REASON, "dry_run": {"type": "boolean"}}
_D = (path_param("destination", "destination name"),)
_DA = (*_D, path_param("action", "action name"))
WHY = {"type": "object", "properties": {"reason": REASON}}
ENDPOINTS = (
    Endpoint(
        "POST",
        "/destinations/{destination}/pause",
        pause,
        "Pause every action of a destination",
        _D,
        write=True,
        body=WHY,
    ),
    Endpoint(
        "POST", "/destinations/{destination}/resume", resume, "Resume a paused destination", _D, write=True, body=WHY
    ),
    Endpoint(
        "POST",
        "/destinations/{destination}/actions/{action}/pause",
        pause,
        "Pause an action",
        _DA,
        write=True,
        body=WHY,
        name="pause_action",
    ),
    Endpoint(
        "POST",
        "/destinations/{destination}/actions/{action}/resume",
        resume,
        "Resume a paused action",
        _DA,
        write=True,
        body=WHY,
        name="resume_action",
    ),
    Endpoint(
        "POST",
        "/store/jobs/retry",
        retry_jobs,
        "Retry (redrive) jobs by ids or by filter",
        write=True,
        body={"type": "object", "properties": {**_TARGETS, "where": {"type": "object"}}},
    ),
    Endpoint(
        "POST",
        "/store/events/replay",
        replay_events,
        "Replay stored events into an action",
        write=True,
        body={
            "type": "object",
            "required": ["to"],
            "properties": {**_TARGETS, "to": {"type": "string"}, "where": {"type": "object"}},
        },
    ),
    Endpoint(
        "POST",
        "/explain",
        explain,
        "Which jobs an event would create, storing nothing",
        write=False,
        body={
            "type": "object",
            "required": ["source", "trigger"],
            "properties": {"source": {"type": "string"}, "trigger": {"type": "string"}, "event": {"type": "object"}},
        },
    ),
)
