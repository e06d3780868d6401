"""Background operations of the admin API (a purge): a route starts one and answers ``202`` with
its id; ``GET /admin/api/operations/{id}`` reports its state (``running``, ``succeeded``,
``failed``), counts and progress (0 to 1).

Operations live in this process's memory (the last :data:`KEPT`): a restart forgets them, and
one running when the service stops is cancelled (what it committed stays).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.admin.endpoints import PREFIX, Call, Endpoint, path_param
from core.admin.errors import ApiError
from hookspecs import new_id

log = logging.getLogger("core.admin")
#: Finished operations remembered at most (the oldest are forgotten first).
KEPT = 100
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


@dataclass(slots=True)
class Operation:
    """One background operation: what it is, who started it, with what, and how far it got."""

    id: str
    kind: str
    by: str
    params: dict[str, Any]
    started_at: datetime
    state: str = RUNNING
    finished_at: datetime | None = None
    progress: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def view(self) -> dict[str, Any]:
        """The operation as the API answers it, with the route reporting it."""
        return asdict(self) | {"href": f"{PREFIX}/operations/{self.id}"}


_operations: OrderedDict[str, Operation] = OrderedDict()
_tasks: set[asyncio.Task[None]] = set()


def start(kind: str, by: str, params: dict[str, Any], work: Callable[[Operation], Awaitable[None]]) -> Operation:
    """Register an operation and run ``work(operation)`` in the background on this event loop."""
    operation = Operation(id=new_id(), kind=kind, by=by, params=params, started_at=datetime.now(UTC))
    _operations[operation.id] = operation
    while len(_operations) > KEPT:
        oldest = next(iter(_operations.values()))
        if oldest.state == RUNNING:
            break
        del _operations[oldest.id]
    task = asyncio.get_running_loop().create_task(_run(operation, work))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return operation


async def _run(operation: Operation, work: Callable[[Operation], Awaitable[None]]) -> None:
    try:
        await work(operation)
    except asyncio.CancelledError:
        operation.state, operation.error = FAILED, "cancelled: the service stopped"
        raise
    except Exception as exc:  # reported on the operation, and logged
        log.exception("admin operation %s (%s) failed", operation.id, operation.kind)
        operation.state, operation.error = FAILED, f"{type(exc).__name__}: {exc}"
    else:
        operation.state, operation.progress = SUCCEEDED, 1.0
    finally:
        operation.finished_at = datetime.now(UTC)


async def get_operation(call: Call) -> Any:
    """One background operation's state, counts and progress."""
    operation = _operations.get(call.path["id"])
    if operation is None:
        raise ApiError(404, f"no operation {call.path['id']!r}", hint=f"this process remembers the last {KEPT}")
    return operation.view()


ENDPOINTS = (
    Endpoint(
        "GET",
        "/operations/{id}",
        get_operation,
        "A background operation's state (running, succeeded, failed), counts and progress",
        (path_param("id", "the operation id a 202 answered"),),
    ),
)
