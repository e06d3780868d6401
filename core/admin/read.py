"""The admin API's read routes: options, sources, destinations (schedule, backlog, paused),
the store's events and jobs (filters, keyset paging), the wanderer's migrations, nodes, health.
Cron and CDC triggers and scheduled actions name the node holding their lease, and until when.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from core.admin import filters
from core.admin.endpoints import Call, Endpoint, Param, path_param
from core.admin.errors import ApiError, not_found
from core.gateway.singleton import trigger_key
from core.plugins._collect import describe
from core.redaction import options_rows, shown_values
from core.scheduler.loop import lease_key
from core.wanderer.runner import version_states
from hookspecs import (
    BacklogStore,
    Destination,
    Lease,
    LeaseListing,
    Page,
    PausingStore,
    Schedule,
    Source,
    Trigger,
    WhereEvent,
)

_TRIGGER_FIELDS = ("path", "methods", "interval", "topic", "group")


def _schedule(schedule: Schedule | None) -> dict[str, Any] | None:
    if schedule is None:
        return None
    return {"realtime": schedule.realtime, "interval": schedule.interval, "max_retries": schedule.max_retries}


async def leases(call: Call) -> dict[str, Lease]:
    """The supervisor's live leases by key (none when it cannot list them)."""
    supervisor = call.runtime.supervisor
    return {lease.key: lease for lease in await supervisor.leases()} if isinstance(supervisor, LeaseListing) else {}


def _holder(lease: Lease | None) -> dict[str, Any] | None:
    """Who holds a singleton's lease and until when; ``None`` when nobody does."""
    return None if lease is None else {"owner": lease.owner, "token": lease.token, "expires_at": lease.expires_at}


def _trigger(source: str, trigger: Trigger, call: Call, held: dict[str, Lease]) -> dict[str, Any]:
    flows = [f.name for f in call.runtime.pipeline.flows if f.source == source and f.trigger in ("*", trigger.name)]
    shown = {name: getattr(trigger, name) for name in _TRIGGER_FIELDS if getattr(trigger, name, None) is not None}
    singleton = trigger.mode in ("cron", "cdc")
    lease = {"lease": _holder(held.get(trigger_key(source, trigger.name)))} if singleton else {}
    return {"name": trigger.name, "mode": trigger.mode, **shown, "flows": flows, **lease}


def _source(source: Source, call: Call, held: dict[str, Lease]) -> dict[str, Any]:
    triggers = [_trigger(source.name, t, call, held) for t in source.triggers.values()]
    return {"name": source.name, "triggers": triggers}


def source_of(call: Call) -> Source:
    """The source named in the path, or a 404 listing the sources."""
    sources = call.runtime.pipeline.sources
    name = call.path["source"]
    if name not in sources:
        raise not_found("source", name, sorted(sources))
    return sources[name]  # type: ignore[no-any-return]


def destination_of(call: Call) -> Destination:
    """The destination named in the path, or a 404 listing the destinations."""
    destinations = call.runtime.pipeline.destinations
    name = call.path["destination"]
    if name not in destinations:
        raise not_found("destination", name, sorted(destinations))
    return destinations[name]  # type: ignore[no-any-return]


def action_of(call: Call) -> tuple[Destination, str]:
    """The destination and action named in the path, or a 404 listing the actions."""
    destination = destination_of(call)
    name = call.path["action"]
    if name not in destination.actions:
        raise not_found("action", f"{destination.name}.{name}", sorted(destination.actions))
    return destination, name


async def backlog(call: Call) -> dict[tuple[str, str], dict[str, int]]:
    """Unfinished jobs by ``(destination, action)`` and status, from the store's summary."""
    store = call.runtime.store
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    if isinstance(store, BacklogStore):
        for (destination, action, status), n in (await store.backlog()).items():
            counts[(destination, action)][status] = n
    return counts


async def paused(call: Call) -> set[tuple[str, str]]:
    """The paused ``(destination, action)`` pairs (``action`` ``*``: the whole destination)."""
    store = call.runtime.store
    return {(p.destination, p.action) for p in await store.pauses()} if isinstance(store, PausingStore) else set()


class _State:
    """What the destination routes read once per request: backlog, pauses and leases."""

    def __init__(self, counts: dict[tuple[str, str], dict[str, int]], pauses: set[tuple[str, str]],
                 held: dict[str, Lease]) -> None:
        self.counts, self.pauses, self.held = counts, pauses, held

    @classmethod
    async def read(cls, call: Call) -> _State:
        return cls(await backlog(call), await paused(call), await leases(call))


def _action(destination: Destination, action: str, state: _State) -> dict[str, Any]:
    schedule = destination.schedule_of(action)
    lease = {} if schedule.realtime else {"lease": _holder(state.held.get(lease_key(destination.name, action)))}
    return {
        "name": action,
        "destination": destination.name,
        "schedule": _schedule(schedule),
        "paused": (destination.name, action) in state.pauses or (destination.name, "*") in state.pauses,
        "backlog": state.counts.get((destination.name, action), {}),
        **lease,
    }


def _destination(destination: Destination, state: _State) -> dict[str, Any]:
    return {
        "name": destination.name,
        "schedule": _schedule(destination.schedule),
        "paused": (destination.name, "*") in state.pauses,
        "actions": [_action(destination, a, state) for a in destination.actions],
    }


async def get_options(call: Call) -> Any:
    """The configuration in effect (secrets replaced) and the [options.*] tables."""
    return {"settings": shown_values(call.runtime.settings), "options": dict(options_rows(call.runtime.host))}


async def list_sources(call: Call) -> Any:
    held = await leases(call)
    return {"sources": [_source(s, call, held) for s in call.runtime.pipeline.sources.values()]}


async def get_source(call: Call) -> Any:
    return _source(source_of(call), call, await leases(call))


async def get_trigger(call: Call) -> Any:
    source = source_of(call)
    name = call.path["trigger"]
    if name not in source.triggers:
        raise not_found("trigger", f"{source.name}/{name}", sorted(source.triggers))
    return _trigger(source.name, source.triggers[name], call, await leases(call))


async def list_destinations(call: Call) -> Any:
    state = await _State.read(call)
    return {"destinations": [_destination(d, state) for d in call.runtime.pipeline.destinations.values()]}


async def get_destination(call: Call) -> Any:
    return _destination(destination_of(call), await _State.read(call))


async def get_action(call: Call) -> Any:
    destination, action = action_of(call)
    return _action(destination, action, await _State.read(call))


async def list_events(call: Call) -> Any:
    limit, after = filters.page_params(call.query)
    found, cursor = await filters.page_of(
        call.runtime.store.find_events, filters.event_filter(call.query), lambda _: True, limit, after
    )
    return {"events": found, "next": cursor}


async def get_event(call: Call) -> Any:
    event = await call.runtime.store.get_event(call.path["event"])
    if event is None:
        raise not_found("event", call.path["event"], hint="list them: GET /admin/api/store/events")
    return event


async def list_jobs(call: Call) -> Any:
    limit, after = filters.page_params(call.query)
    chosen = filters.job_filter(call.query)
    found, cursor = await filters.page_of(call.runtime.store.find_jobs, chosen.where, chosen.keep, limit, after)
    return {"jobs": found, "next": cursor}


async def _job(call: Call) -> Any:
    job = await call.runtime.store.get_job(call.path["job"])
    if job is None:
        raise not_found("job", call.path["job"], hint="list them: GET /admin/api/store/jobs")
    return job


async def get_job(call: Call) -> Any:
    return await _job(call)


async def get_job_transitions(call: Call) -> Any:
    return {"transitions": (await _job(call)).transitions}


async def _migrations(call: Call) -> list[dict[str, Any]]:
    wanderer = call.runtime.wanderer
    if wanderer is None:
        raise ApiError(
            404,
            "no wanderer is configured: migrations are not tracked",
            hint="set 'wanderer' in core.toml (e.g. sqlite:///.core/core.db)",
        )
    runs = await wanderer.history()
    by_scope: dict[str, list[Any]] = defaultdict(list)
    for run in runs:
        by_scope[run.scope].append(run)
    found: dict[str, dict[str, Any]] = {}
    for migration in call.runtime.pipeline.migrations:
        found[f"{migration.scope}@{migration.version}"] = {
            "id": f"{migration.scope}@{migration.version}",
            "scope": migration.scope,
            "version": migration.version,
            "name": migration.name,
            "status": "pending",
            "transitions": [],
        }
    for scope, history in by_scope.items():
        for version, state in version_states(history).items():
            key = f"{scope}@{version}"
            entry = found.setdefault(
                key,
                {
                    "id": key,
                    "scope": scope,
                    "version": version,
                    "name": state.latest.name if state.latest else "",
                    "transitions": [],
                },
            )
            entry["status"] = (
                "applied"
                if state.applied
                else (f"{state.last.direction.value} {state.last.status.value}" if state.last else "acknowledged")
            )
            entry["transitions"] = [r for r in history if r.version == version]
    return sorted(found.values(), key=lambda m: (m["scope"], m["version"]))


async def list_migrations(call: Call) -> Any:
    return {"migrations": [{k: v for k, v in m.items() if k != "transitions"} for m in await _migrations(call)]}


async def _migration(call: Call) -> dict[str, Any]:
    for migration in await _migrations(call):
        if migration["id"] == call.path["migration"]:
            return migration
    raise not_found(
        "migration", call.path["migration"], hint="ids are SCOPE@VERSION: GET /admin/api/wanderer/migrations"
    )


async def get_migration(call: Call) -> Any:
    return {k: v for k, v in (await _migration(call)).items() if k != "transitions"}


async def get_migration_transitions(call: Call) -> Any:
    return {"transitions": (await _migration(call))["transitions"]}


async def list_nodes(call: Call) -> Any:
    supervisor = call.runtime.supervisor
    return {"nodes": await supervisor.nodes() if supervisor is not None else []}


async def health(call: Call) -> Any:
    try:
        await call.runtime.store.find_events(WhereEvent(page=Page(limit=1)))
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", with why
        return 503, {"status": "unavailable", "store": describe(exc)}
    return {"status": "ok", "store": "ok", "node": call.runtime.node_id}


_OBJ = {"type": "object"}


def _list(key: str) -> dict[str, Any]:
    return {"type": "object", "required": [key], "properties": {key: {"type": "array"}}}


def _paged(key: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [key, "next"],
        "properties": {key: {"type": "array"}, "next": {"type": ["string", "null"]}},
    }


S, T, D, A = (
    path_param("source", "source name"),
    path_param("trigger", "trigger name"),
    path_param("destination", "destination name"),
    path_param("action", "action name"),
)
M = Param("migration", "path", {"type": "string", "minLength": 1}, "SCOPE@VERSION", required=True)

ENDPOINTS = (
    Endpoint("GET", "/options", get_options, "The configuration in effect, secrets replaced"),
    Endpoint("GET", "/sources", list_sources, "Every source with its triggers and flows", response=_list("sources")),
    Endpoint("GET", "/sources/{source}", get_source, "One source", (S,)),
    Endpoint("GET", "/sources/{source}/triggers/{trigger}", get_trigger, "One trigger", (S, T)),
    Endpoint(
        "GET",
        "/destinations",
        list_destinations,
        "Every destination: schedules, paused state, backlog",
        response=_list("destinations"),
    ),
    Endpoint("GET", "/destinations/{destination}", get_destination, "One destination", (D,)),
    Endpoint("GET", "/destinations/{destination}/actions/{action}", get_action, "One action", (D, A)),
    Endpoint(
        "GET",
        "/store/events",
        list_events,
        "Stored events, oldest first, a page at a time",
        (*filters.EVENT_PARAMS, *filters.PAGE_PARAMS),
        response=_paged("events"),
    ),
    Endpoint("GET", "/store/events/{event}", get_event, "One event with its jobs", (path_param("event", "event id"),)),
    Endpoint(
        "GET",
        "/store/jobs",
        list_jobs,
        "Jobs with their status, oldest first, a page at a time",
        (*filters.JOB_PARAMS, *filters.PAGE_PARAMS),
        response=_paged("jobs"),
    ),
    Endpoint("GET", "/store/jobs/{job}", get_job, "One job with its transitions", (path_param("job", "job id"),)),
    Endpoint(
        "GET",
        "/store/jobs/{job}/transitions",
        get_job_transitions,
        "A job's transitions, oldest first",
        (path_param("job", "job id"),),
        response=_list("transitions"),
    ),
    Endpoint(
        "GET", "/wanderer/migrations", list_migrations, "Every migration and its status", response=_list("migrations")
    ),
    Endpoint(
        "GET",
        "/wanderer/migrations/{migration:path}/transitions",
        get_migration_transitions,
        "A migration's runs, oldest first",
        (M,),
        response=_list("transitions"),
    ),
    Endpoint("GET", "/wanderer/migrations/{migration:path}", get_migration, "One migration", (M,)),
    Endpoint("GET", "/nodes", list_nodes, "The running nodes (the supervisor's registry)", response=_list("nodes")),
    Endpoint("GET", "/_health", health, "200 if the store answers, else 503"),
)
