"""Purge by time: delete stored events received before a time whose jobs are all final (the
store's ``purge(before=)``), from the admin API in the background or from ``core purge``.

The store purges by time only, so ``where`` filters are refused (a ``400`` naming ``before``).
The range from the oldest such event to ``before`` is purged in :data:`SLICES` steps, oldest
first, each one ``purge(before=step)`` call (the store deletes in chunks of ``purge_batch``
events), so progress can be reported and the writes go on meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from core.admin import filters, operations
from core.admin.endpoints import Call, Endpoint
from core.admin.errors import ApiError
from hookspecs import Page, Store, WhereEvent

SLICES = 20
#: What a purge body may hold.
ALLOWED = ["before"]


def purge_before(body: dict[str, Any]) -> datetime:
    """The ``before`` of a purge body; 400/422 for a malformed time or filters the store lacks."""
    where = body.get("where") or {}
    if not isinstance(where, dict):
        raise ApiError(422, "where must be an object of event filters")
    if where:
        raise ApiError(
            400,
            f"where: the store purges by time only, not by {', '.join(sorted(map(str, where)))}",
            allowed=ALLOWED,
            hint='give only "before": events received before it whose jobs are all final are purged',
        )
    if body.get("before") in (None, ""):
        raise ApiError(422, "before is required: ISO 8601 time (2026-01-31T12:00:00Z) or a duration ago (720h, 2h)")
    if not isinstance(body["before"], str):
        raise ApiError(400, "before must be a string: ISO 8601 time (2026-01-31T12:00:00Z) or a duration ago (2h)")
    before = filters.time(body, "before")
    assert before is not None
    return before


async def purge_range(store: Store, before: datetime, progress: Callable[[int, float], None] | None = None) -> int:
    """Purge events received before ``before`` in :data:`SLICES` steps, oldest first; return how
    many; ``progress(purged, fraction)`` after each step."""
    oldest = await store.find_events(WhereEvent(received_before=before, page=Page(limit=1)))
    start = oldest[0].received_at if oldest else before
    steps = SLICES if start < before else 1
    total = 0
    for step in range(1, steps + 1):
        until = before if step == steps else start + (before - start) * step / steps
        total += await store.purge(before=until)
        if progress is not None:
            progress(total, step / steps)
    return total


async def purge(call: Call) -> Any:
    """Start purging events received before ``before`` whose jobs are all final: ``202`` with
    the operation to follow at ``GET /admin/api/operations/{id}``."""
    body = call.body or {}
    before = purge_before(body)
    store = call.runtime.store

    async def work(operation: operations.Operation) -> None:
        def report(purged: int, fraction: float) -> None:
            operation.counts["purged"], operation.progress = purged, fraction

        report(0, 0.0)
        await purge_range(store, before, report)

    operation = operations.start("purge", call.who, {"before": before.isoformat()}, work)
    return 202, operation.view()


ENDPOINTS = (
    Endpoint(
        "POST",
        "/store/purge",
        purge,
        "Purge (in the background) events received before a time whose jobs are all final",
        write=True,
        status=202,
        body={
            "type": "object",
            "required": ["before"],
            "properties": {
                "before": {"type": "string", "description": "ISO 8601 time, or a duration ago (720h, 2h)"},
                "where": {"type": "object", "description": "not supported: the store purges by time only"},
            },
        },
    ),
)
