"""The dashboard's read pages. Each reads through the admin API's own functions
(:mod:`core.admin.read`, :mod:`core.admin.flows`) with a :class:`~core.admin.endpoints.Call`
as the session's token, and through the store's dashboard reads (:mod:`core.sqlstore.activity`)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.responses import RedirectResponse, Response

from core.admin import filters, flows, read
from core.admin.dashboard.overview import action_rows, nothing
from core.admin.dashboard.web import ROOT, Page
from core.admin.errors import ApiError
from core.sqlstore.activity import ActivityStore
from hookspecs import Pause, PausingStore

#: Rows of a list page.
PAGE_ROWS = 50


async def overview(page: Page) -> Response:
    """Every action: backlog, last hour's activity, failing ones first (refreshes itself)."""
    return page.render("overview.html", rows=await action_rows(page.call()))


async def _pauses(page: Page) -> dict[tuple[str, str], Pause]:
    """The store's pauses (who, when, why) by ``(destination, action)``."""
    store = page.runtime.store
    return {(p.destination, p.action): p for p in await store.pauses()} if isinstance(store, PausingStore) else {}


async def destination(page: Page) -> Response:
    """One destination: paused (by whom, why) or running, its actions, the pause / resume of all of it."""
    call = page.call(page.request.path_params)
    found, pauses = await asyncio.gather(read.get_destination(call), _pauses(page))
    return page.render("destination.html", destination=found, pause=pauses.get((found["name"], "*")))


async def action(page: Page) -> Response:
    """One action: schedule, state (its own pause, its destination's), recent failures by error
    message, its write buttons. Its reads run at once (each on its own connection of the pool)."""
    path = dict(page.request.path_params)
    call = page.call(path)
    read.action_of(call)  # a 404 before any read
    store, key = page.runtime.store, (path["destination"], path["action"])
    reads = isinstance(store, ActivityStore)
    found, pauses, summarised, failed = await asyncio.gather(
        read.get_action(call), _pauses(page),
        store.action_summary(*key) if reads else nothing(), store.failures(*key) if reads else nothing(),
    )
    return page.render(
        "action.html", action=found, ref=".".join(key), own_pause=pauses.get(key),
        destination_paused=(key[0], "*") in pauses, summary=summarised, failures=failed,
    )


async def event(page: Page) -> Response:
    """One event: its fields, its payload as text, its jobs."""
    return page.render("event.html", event=await read.get_event(page.call(page.request.path_params)))


async def job(page: Page) -> Response:
    """One job: its timeline of transitions, its parent and child jobs, a retry button."""
    found = await read.get_job(page.call(page.request.path_params))
    siblings = (await read.get_event(page.call({"event": found.event_id}))).jobs
    children = [j for j in siblings if j.parent_job_id == found.id]
    return page.render("job.html", job=found, children=children)


def _query(page: Page) -> dict[str, Any]:
    query = {k: v for k, v in page.request.query_params.items() if v}
    query.setdefault("limit", str(PAGE_ROWS))
    return query


async def jobs(page: Page) -> Response:
    """Jobs matching the filter of the query string, a keyset page at a time."""
    query = _query(page)
    found = await read.list_jobs(page.call(query=query))
    return page.render("jobs.html", jobs=found["jobs"], next=found["next"], query=query,
                       filters=filters.JOB_PARAMS, statuses=filters.STATUSES)


async def events(page: Page) -> Response:
    """Events matching the filter of the query string, a keyset page at a time."""
    query = _query(page)
    found = await read.list_events(page.call(query=query))
    return page.render("events.html", events=found["events"], next=found["next"], query=query,
                       filters=filters.EVENT_PARAMS)


#: The parameters of the lists a search by filter goes to (paging aside).
_LISTS = (("jobs", frozenset(filters.JOB_FILTER_NAMES)), ("events", frozenset(p.name for p in filters.EVENT_PARAMS)))


def _filtered(wanted: str) -> tuple[str | None, str | None]:
    """The list a search ``name=value&...`` goes to (the jobs, else the events, whichever takes
    every name), and else why none does."""
    names = {name for name, _ in parse_qsl(wanted, keep_blank_values=True)} - {"limit"}
    for path, known in _LISTS:
        if names and names <= known:
            return f"{ROOT}/{path}?{urlencode(parse_qsl(wanted))}", None
    known_names = sorted(filters.JOB_FILTER_NAMES | _LISTS[1][1])
    return None, f"no list filters on {', '.join(sorted(names)) or 'that'}; the filters are {', '.join(known_names)}"


async def search(page: Page) -> Response:
    """A job or event id goes to its page, a filter (``status_in=failed&actions_in=crm.sync``)
    to the list of jobs (or events) it takes; anything else is said not found."""
    wanted = page.request.query_params.get("q", "").strip()
    problem = None
    if "=" in wanted:
        target, problem = _filtered(wanted)
        if target is not None:
            return RedirectResponse(target, 303)
    elif wanted:
        if await page.runtime.store.get_job(wanted) is not None:
            return RedirectResponse(f"{ROOT}/jobs/{quote(wanted, safe='')}", 303)
        if await page.runtime.store.get_event(wanted) is not None:
            return RedirectResponse(f"{ROOT}/events/{quote(wanted, safe='')}", 303)
        problem = f"No job or event has the id {wanted}."
    return page.render("search.html", wanted=wanted, problem=problem, filters=filters.JOB_PARAMS,
                       statuses=filters.STATUSES)


async def sources(page: Page) -> Response:
    """Sources with their triggers and lock holders, and the flows with enable / disable."""
    call = page.call()
    return page.render("sources.html", sources=(await read.list_sources(call))["sources"],
                       flows=(await flows.list_flows(call))["flows"])


async def nodes(page: Page) -> Response:
    """The running nodes (the supervisor's registry)."""
    return page.render("nodes.html", nodes=(await read.list_nodes(page.call()))["nodes"],
                       supervised=page.runtime.supervisor is not None)


async def migrations(page: Page) -> Response:
    """The wanderer's migrations and their status."""
    try:
        found, missing = (await read.list_migrations(page.call()))["migrations"], None
    except ApiError as exc:
        found, missing = [], exc.message
    return page.render("migrations.html", migrations=found, missing=missing)


async def options(page: Page) -> Response:
    """The configuration in effect, secrets replaced (the admin API's options read)."""
    found = await read.get_options(page.call())
    return page.render("options.html", settings=found["settings"], options=found["options"])
