"""Query parameters of the store routes: Blacksmith's job filters (``*_in``, ``*_notin``,
``created_before/after``, ``min/max_attempts``) and keyset paging (``limit``, ``after``).

A list parameter takes comma-separated values or repeats (``status_in=failed,discarded``).
What the store's :class:`~hookspecs.WhereJob` filters on goes to the store; the rest
(``destinations_notin``, ``actions_notin``, ``min_attempts``) is applied to each page read,
reading further pages until ``limit`` match, so memory stays bounded by the page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from starlette.datastructures import QueryParams

from core.admin.endpoints import Param
from core.admin.errors import ApiError
from core.paging import SCAN_PAGE
from core.timing import parse_moment
from hookspecs import Event, Job, Page, Status, WhereEvent, WhereJob

T = TypeVar("T", Job, Event)
STATUSES = [s.value for s in Status]
MAX_LIMIT = 1000

_LIST = {"type": "string", "description": "comma-separated values"}
_TIME = {"type": "string", "description": "ISO 8601 time, or a duration ago (30m, 2h)"}
PAGE_PARAMS = (
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "most items returned (100)"),
    Param("after", "query", {"type": "string"}, "keyset cursor: the `next` of the previous page"),
)
JOB_PARAMS = (
    *(
        Param(name, "query", _LIST, text)
        for name, text in (
            ("ids_in", "job ids"),
            ("event_ids_in", "event ids"),
            ("sources_in", "sources of the jobs' events"),
            ("events_in", "names of the jobs' events"),
            ("destinations_in", "destinations"),
            ("destinations_notin", "destinations to leave out"),
            ("actions_in", "actions: destination.action or a bare action name"),
            ("actions_notin", "actions to leave out: destination.action or a bare action name"),
            ("status_in", f"statuses, of {', '.join(STATUSES)}"),
            ("status_notin", "statuses to leave out"),
        )
    ),
    Param("min_attempts", "query", {"type": "integer", "minimum": 0}, "jobs with at least this many attempts"),
    Param("max_attempts", "query", {"type": "integer", "minimum": 0}, "jobs with at most this many attempts"),
    Param("created_after", "query", _TIME, "created after this time"),
    Param("created_before", "query", _TIME, "created before this time"),
)
EVENT_PARAMS = (
    Param("ids_in", "query", _LIST, "event ids"),
    Param("sources_in", "query", _LIST, "sources"),
    Param("names_in", "query", _LIST, "event names"),
    Param("received_after", "query", _TIME, "received after this time"),
    Param("received_before", "query", _TIME, "received before this time"),
)
JOB_FILTER_NAMES = frozenset(p.name for p in JOB_PARAMS)


def values(query: QueryParams | dict[str, Any], name: str) -> list[str]:
    """Every value of list parameter ``name`` (repeated and/or comma-separated)."""
    raw = query.getlist(name) if isinstance(query, QueryParams) else _as_list(query.get(name))
    return [part.strip() for value in raw for part in str(value).split(",") if part.strip()]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _one(query: QueryParams | dict[str, Any], name: str) -> Any:
    value = query.get(name)
    return None if value in (None, "") else value


def integer(query: QueryParams | dict[str, Any], name: str, low: int, high: int | None = None) -> int | None:
    """An integer parameter from ``low`` to ``high``, or ``None`` when absent; 400 otherwise."""
    value = _one(query, name)
    if value is None:
        return None
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number < low or (high is not None and number > high):
        top = f" to {high}" if high is not None else " or more"
        raise ApiError(400, f"{name}={value!r} is not a whole number from {low}{top}")
    return number


def time(query: QueryParams | dict[str, Any], name: str) -> datetime | None:
    """A time parameter: ISO 8601 (UTC without an offset) or a duration ago; 400 otherwise."""
    value = _one(query, name)
    if value is None:
        return None
    try:
        return parse_moment(str(value))
    except ValueError as exc:
        raise ApiError(400, f"{name}: {exc}", hint="e.g. 2026-01-31T12:00:00Z or 2h") from None


def statuses(query: QueryParams | dict[str, Any], name: str) -> list[Status]:
    """A list of statuses; an unknown one is a 400 listing them."""
    found = values(query, name)
    wrong = [s for s in found if s not in STATUSES]
    if wrong:
        raise ApiError(400, f"{name}: {', '.join(map(repr, wrong))} is not a job status", allowed=STATUSES)
    return [Status(s) for s in found]


@dataclass(frozen=True, slots=True)
class JobFilter:
    """A job filter: the part the store applies, and the part applied to each page."""

    where: WhereJob
    destinations_notin: frozenset[str] = frozenset()
    actions_notin: frozenset[str] = frozenset()
    actions_in: frozenset[str] = frozenset()
    min_attempts: int | None = None

    def keep(self, job: Job) -> bool:
        """Whether ``job`` passes the part of the filter the store does not apply."""
        ref = f"{job.destination}.{job.action}"
        if self.actions_in and job.action not in self.actions_in and ref not in self.actions_in:
            return False
        if job.destination in self.destinations_notin or ref in self.actions_notin or job.action in self.actions_notin:
            return False
        return self.min_attempts is None or job.attempt >= self.min_attempts


def job_filter(query: QueryParams | dict[str, Any]) -> JobFilter:
    """The :class:`JobFilter` of a request's parameters (query string or a JSON ``where``)."""
    actions = values(query, "actions_in")
    parts = [a.rpartition(".") for a in actions]
    low, high = integer(query, "min_attempts", 0), integer(query, "max_attempts", 0)
    if low is not None and high is not None and low > high:
        raise ApiError(400, f"min_attempts={low} is above max_attempts={high}: no job can match")
    where = WhereJob(
        ids=values(query, "ids_in"),
        event_ids=values(query, "event_ids_in"),
        sources=values(query, "sources_in"),
        events_in=values(query, "events_in"),
        destinations_in=values(query, "destinations_in"),
        actions_in=sorted({a for _, _, a in parts}),
        status_in=statuses(query, "status_in"),
        status_not_in=statuses(query, "status_notin"),
        max_attempts=high,
        created_after=time(query, "created_after"),
        created_before=time(query, "created_before"),
    )
    return JobFilter(
        where=where,
        destinations_notin=frozenset(values(query, "destinations_notin")),
        actions_notin=frozenset(values(query, "actions_notin")),
        actions_in=frozenset(actions),
        min_attempts=low,
    )


def event_filter(query: QueryParams | dict[str, Any]) -> WhereEvent:
    """The :class:`WhereEvent` of a request's parameters."""
    return WhereEvent(
        ids=values(query, "ids_in"),
        sources=values(query, "sources_in"),
        names=values(query, "names_in"),
        received_after=time(query, "received_after"),
        received_before=time(query, "received_before"),
    )


async def page_of(
    find: Callable[[Any], Awaitable[list[T]]],
    where: WhereJob | WhereEvent,
    keep: Callable[[T], bool],
    limit: int,
    after: str | None,
) -> tuple[list[T], str | None]:
    """One page of at most ``limit`` matches after cursor ``after`` (oldest first, by id), and
    the cursor of the next page (``None`` at the end)."""
    found: list[T] = []
    size = limit  # the store applies most filters: the first read usually fills the page
    while True:
        batch = await find(replace(where, page=Page(limit=size, after=after)))
        for item in batch:
            if keep(item):
                found.append(item)
                if len(found) == limit:
                    return found, item.id
        if len(batch) < size:
            return found, None
        after, size = batch[-1].id, SCAN_PAGE


async def every(
    find: Callable[[Any], Awaitable[list[T]]], where: WhereJob | WhereEvent, keep: Callable[[T], bool]
) -> Any:
    """Yield every match page by page (a list per page): bounded memory for bulk writes."""
    after: str | None = None
    while True:
        batch = await find(replace(where, page=Page(limit=SCAN_PAGE, after=after)))
        chosen = [item for item in batch if keep(item)]
        if chosen:
            yield chosen
        if len(batch) < SCAN_PAGE:
            return
        after = batch[-1].id


def page_params(query: QueryParams) -> tuple[int, str | None]:
    """``limit`` (default 100) and ``after`` of a list route."""
    return integer(query, "limit", 1, MAX_LIMIT) or 100, _one(query, "after")


def check_names(names: Sequence[str], known: Sequence[str], what: str) -> None:
    """Refuse names not in ``known`` (a 400 listing them)."""
    wrong = [n for n in names if n not in known]
    if wrong:
        raise ApiError(400, f"no {what} {', '.join(map(repr, wrong))} in the pipeline", allowed=sorted(known))
