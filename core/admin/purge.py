"""Purge: delete stored events received before a time whose jobs are all final and, given a
``where`` of job filters, all match it (the store's ``purge(before=, where=)``: an event's
history goes whole or not at all), from the admin API in the background or from ``core purge``.

``where`` takes the job filters of ``GET /admin/api/store/jobs`` that the store applies
(:data:`PURGE_FILTERS`); an ``actions_in`` of ``destination.action`` references of one
destination is the store's ``destinations_in`` plus ``actions_in``. The range from the oldest
event to ``before`` is purged in :data:`SLICES` steps, oldest first, each one ``purge`` call
(the store deletes in chunks of ``purge_batch`` events), so progress can be reported and the
writes go on meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from core.admin import filters, operations
from core.admin.endpoints import Call, Endpoint
from core.admin.errors import ApiError
from hookspecs import Page, Store, WhereEvent, WhereJob

SLICES = 20
#: The job filters a purge's ``where`` may hold: those the store applies itself.
PURGE_FILTERS = sorted(filters.JOB_FILTER_NAMES - {"destinations_notin", "actions_notin", "min_attempts"})
#: What a purge body may hold.
ALLOWED = ["before", "reason", "where"]


def purge_before(body: dict[str, Any]) -> datetime:
    """The ``before`` of a purge body; 400/422 for a missing or malformed time."""
    if body.get("before") in (None, ""):
        raise ApiError(422, "before is required: ISO 8601 time (2026-01-31T12:00:00Z) or a duration ago (720h, 2h)")
    if not isinstance(body["before"], str):
        raise ApiError(400, "before must be a string: ISO 8601 time (2026-01-31T12:00:00Z) or a duration ago (2h)")
    before = filters.time(body, "before")
    assert before is not None
    return before


def purge_where(body: dict[str, Any]) -> WhereJob | None:
    """The store filter of a purge body's ``where`` (``None`` without one); 400/422 for a
    filter the store cannot apply, an unknown one or a malformed value."""
    where = body.get("where") or {}
    if not isinstance(where, dict):
        raise ApiError(422, "where must be an object of job filters", allowed=PURGE_FILTERS)
    unknown = sorted(set(where) - set(PURGE_FILTERS))
    if unknown:
        raise ApiError(400, f"where: purge cannot filter by {', '.join(unknown)}; it takes "
                            f"{', '.join(PURGE_FILTERS)}", allowed=PURGE_FILTERS,
                       hint="an event is purged when all its jobs match: keep jobs out with status_notin, "
                            "or select them with destinations_in / actions_in")
    if not where:
        return None
    chosen = filters.job_filter(where)
    refs = {ref.rpartition(".")[0] for ref in chosen.actions_in}
    if len(refs) > 1:
        raise ApiError(400, "where: actions_in of a purge names bare actions or actions of one destination",
                       hint="purge one destination at a time, e.g. actions_in=warehouse.insert,warehouse.update")
    destination = next(iter(refs - {""}), None)
    if destination is None:
        return chosen.where
    if chosen.where.destinations_in and destination not in chosen.where.destinations_in:
        raise ApiError(400, f"where: actions_in names {destination!r}, which destinations_in leaves out: "
                            "no event can match")
    return replace(chosen.where, destinations_in=[destination])


async def purge_range(store: Store, before: datetime, progress: Callable[[int, float], None] | None = None,
                      where: WhereJob | None = None) -> int:
    """Purge events received before ``before`` (matching ``where``) in :data:`SLICES` steps,
    oldest first; return how many; ``progress(purged, fraction)`` after each step."""
    oldest = await store.find_events(WhereEvent(received_before=before, page=Page(limit=1)))
    start = oldest[0].received_at if oldest else before
    steps = SLICES if start < before else 1
    total = 0
    for step in range(1, steps + 1):
        until = before if step == steps else start + (before - start) * step / steps
        total += await (store.purge(before=until) if where is None else store.purge(before=until, where=where))
        if progress is not None:
            progress(total, step / steps)
    return total


async def purge(call: Call) -> Any:
    """Start purging events received before ``before`` whose jobs are all final (and all match
    ``where``): ``202`` with the operation to follow at ``GET /admin/api/operations/{id}``."""
    body = call.body or {}
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object", allowed=ALLOWED)
    before, where = purge_before(body), purge_where(body)
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ApiError(400, "reason must be a string: why, kept with the operation")
    store = call.runtime.store

    async def work(operation: operations.Operation) -> None:
        def report(purged: int, fraction: float) -> None:
            operation.counts["purged"], operation.progress = purged, fraction

        report(0, 0.0)
        await purge_range(store, before, report, where)

    params = {"before": before.isoformat(), "where": body.get("where") or {}, "reason": reason}
    operation = operations.start("purge", call.who, params, work)
    return 202, operation.view()


ENDPOINTS = (
    Endpoint(
        "POST",
        "/store/purge",
        purge,
        "Purge (in the background) events received before a time whose jobs are all final and match `where`",
        write=True,
        status=202,
        body={
            "type": "object",
            "required": ["before"],
            "properties": {
                "before": {"type": "string", "description": "ISO 8601 time, or a duration ago (720h, 2h)"},
                "where": {
                    "type": "object",
                    "description": "job filters of /store/jobs (comma-separated values); an event is purged "
                                   "when all its jobs match",
                    "properties": {name: {"type": ["string", "integer"]} for name in PURGE_FILTERS},
                    "additionalProperties": False,
                },
                "reason": {"type": "string", "description": "why, kept with the operation"},
            },
        },
    ),
)
