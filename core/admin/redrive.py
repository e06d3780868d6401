"""Bulk redrive (retry) of jobs in bounded memory: the matches are read a keyset page at a
time (``find_jobs(WhereJob(page=Page(limit, after)))``) and each page's ``awaiting``
transitions are written in one ``add_transitions`` call before the next page is read, so at
most one page of jobs is held at once. ``progress(done, matched)`` is called after each page,
for the CLI's progress display.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.admin import filters
from hookspecs import Status, Store, Transition, new_id

#: Statuses a job may be retried from.
RETRYABLE = (Status.FAILED, Status.DISCARDED, Status.UNKNOWN)
Progress = Callable[[int, int], None]
#: Refusals listed at most (the count says how many in all).
LISTED = 100


@dataclass(slots=True)
class Redriven:
    """What a redrive did: jobs matched, retried (or, dry, retryable), how many were refused
    and the first :data:`LISTED` refusals; ``seen``: the ids found when ids were asked for;
    ``by_action``: jobs retried by ``(destination.action, status before)``."""

    matched: int = 0
    retried: int = 0
    refused_count: int = 0
    refused: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    by_action: Counter[tuple[str, str]] = field(default_factory=Counter)

    def refuse(self, reasons: list[str]) -> None:
        """Count ``reasons``, keeping the first :data:`LISTED` (bounded memory)."""
        self.refused_count += len(reasons)
        self.refused += reasons[: max(0, LISTED - len(self.refused))]


async def redrive(
    store: Store,
    chosen: filters.JobFilter,
    note: str,
    *,
    dry_run: bool = False,
    total: int = 0,
    progress: Progress | None = None,
) -> Redriven:
    """Retry every job ``chosen`` matches, page by page (see the module); ``total`` is the
    expected number of matches passed on to ``progress``."""
    done = Redriven()
    retryable = ", ".join(s.value for s in RETRYABLE)
    async for page in filters.every(store.find_jobs, chosen.where, chosen.keep):
        if chosen.where.ids:
            done.seen.update(job.id for job in page)
        movable = [job for job in page if job.status in RETRYABLE]
        done.refuse([
            f"{job.id}: is {job.status.value}; only {retryable} jobs are retried" for job in page
            if job.status not in RETRYABLE
        ])
        done.matched += len(page)
        if dry_run:
            done.retried += len(movable)
            done.by_action.update((f"{j.destination}.{j.action}", j.status.value) for j in movable)
        elif movable:
            now = datetime.now(UTC)
            lost = await store.add_transitions([
                Transition(id=new_id(), job_id=j.id, event_id=j.event_id, attempt=j.attempt, state_before=j.status,
                           state_after=Status.AWAITING, created_at=now, due_at=now, error=note)
                for j in movable
            ])
            done.retried += len(movable) - len(lost)
            done.refuse([r.reason for r in lost])
            gone = {r.transition.job_id for r in lost}  # moved on since it was read (say, claimed)
            done.by_action.update((f"{j.destination}.{j.action}", j.status.value) for j in movable if j.id not in gone)
        if progress is not None:
            progress(done.matched, max(total, done.matched))
    return done
