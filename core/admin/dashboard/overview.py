"""What the overview shows of each action: its backlog, paused state and lease (the admin API's
destinations read), last hour's succeeded and failed jobs in 5-minute buckets with the failure
rate (the store's activity read), its failed and discarded counts and oldest waiting job.

A bucket that ended more than :data:`SETTLED` ago no longer changes, so this process keeps it
(:class:`Activity`) and each refresh reads from the store only the buckets after the last
settled one: with 100,000 jobs an hour, a refresh reads minutes of history, not the hour.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from core.admin import read
from core.admin.dashboard.chart import Bucket, bars
from core.admin.endpoints import Call
from core.sqlstore.activity import ActivityStore

WINDOW = timedelta(hours=1)
BUCKET_SECONDS = 300
_BAD = ("failed", "discarded")
#: How long after its end a bucket is taken as complete (the writes of that time committed).
SETTLED = timedelta(seconds=30)
Row = tuple[str, str, str, int, int]


@dataclass(slots=True)
class Activity:
    """The settled buckets of one store's activity read by this process, by bucket number."""

    settled: dict[int, list[Row]] = field(default_factory=dict)

    async def rows(self, read: Callable[[datetime, int], Awaitable[list[Row]]], now: datetime) -> list[Row]:
        """The activity rows of the window ending ``now``, reading only the unsettled buckets."""
        last = int(now.timestamp()) // BUCKET_SECONDS
        first = last - int(WINDOW.total_seconds()) // BUCKET_SECONDS + 1
        for old in [b for b in self.settled if b < first]:
            del self.settled[old]
        start = next((b for b in range(first, last + 1) if b not in self.settled), last)
        fresh = await read(datetime.fromtimestamp(start * BUCKET_SECONDS, UTC), BUCKET_SECONDS)
        by_bucket: dict[int, list[Row]] = defaultdict(list)
        for row in fresh:
            by_bucket[row[3]].append(row)
        done = (now - SETTLED).timestamp()
        for bucket in range(start, last + 1):
            if (bucket + 1) * BUCKET_SECONDS <= done:
                self.settled[bucket] = by_bucket.get(bucket, [])
        kept = [row for b in range(first, start) for row in self.settled.get(b, [])]
        return kept + [row for row in fresh if row[3] >= first]


_activities: WeakKeyDictionary[Any, Activity] = WeakKeyDictionary()


@dataclass(slots=True)
class ActionRow:
    """One action on the overview (``summary`` and ``chart`` empty when the store has no such reads;
    ``paused`` also when its whole destination is, ``destination_paused`` then)."""

    destination: str
    name: str
    schedule: dict[str, Any]
    paused: bool
    lease: dict[str, Any] | None
    backlog: dict[str, int]
    succeeded: int
    failed: int
    chart: str
    summary: Any = None
    destination_paused: bool = False

    @property
    def failure_rate(self) -> float:
        """Failed (or discarded) of the jobs finished in the last hour, from 0 to 1."""
        done = self.succeeded + self.failed
        return self.failed / done if done else 0.0

    @property
    def failing(self) -> bool:
        """Whether jobs failed in the last hour or wait to be retried."""
        return self.failed > 0 or self.backlog.get("failed", 0) > 0


def _buckets(rows: list[Row], now: datetime) -> dict[tuple[str, str], list[Bucket]]:
    """Each action's buckets of the window, oldest first (empty buckets included; an action
    with no activity is missing: key ``("", "")`` holds the empty window)."""
    last = int(now.timestamp()) // BUCKET_SECONDS
    first = last - int(WINDOW.total_seconds()) // BUCKET_SECONDS + 1
    counts: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    counts[("", "")] = defaultdict(lambda: [0, 0])
    for destination, action, status, bucket, n in rows:
        if status == "succeeded" or status in _BAD:
            counts[(destination, action)][bucket][status != "succeeded"] += n
    return {
        key: [Bucket(datetime.fromtimestamp(b * BUCKET_SECONDS, UTC).strftime("%H:%M"), *by_bucket[b])
              for b in range(first, last + 1)]
        for key, by_bucket in counts.items()
    }


async def nothing() -> None:
    """What a store without a read gives (awaitable beside the reads it has)."""


async def action_rows(call: Call) -> list[ActionRow]:
    """Every action of the pipeline, failing ones first (then by failure rate, then by name).
    The store's reads run at once (each on its own connection of the pool)."""
    store, now = call.runtime.store, datetime.now(UTC)
    reads = isinstance(store, ActivityStore)
    kept = _activities.setdefault(store, Activity())
    found, recent = await asyncio.gather(
        read.list_destinations(call), kept.rows(store.activity, now) if reads else nothing()
    )
    listed = found["destinations"]
    buckets = _buckets(recent, now) if recent is not None else {}
    keys = [(d["name"], a["name"]) for d in listed for a in d["actions"]]
    summaries = await asyncio.gather(*(store.action_summary(*key) if reads else nothing() for key in keys))
    rows = []
    for (destination, action), key, summarised in zip(
        ((d, a) for d in listed for a in d["actions"]), keys, summaries, strict=True
    ):
        mine = buckets.get(key) or buckets.get(("", ""), [])
        ok, bad = sum(b.succeeded for b in mine), sum(b.failed for b in mine)
        label = f"{key[0]}.{key[1]}, last hour: {ok} succeeded, {bad} failed"
        rows.append(ActionRow(
            destination=key[0], name=key[1], schedule=action["schedule"],
            paused=action["paused"] or destination["paused"], lease=(action.get("lease") or None),
            backlog=action["backlog"], succeeded=ok, failed=bad,
            chart=bars(mine, label) if reads else "", summary=summarised,
            destination_paused=destination["paused"],
        ))
    rows.sort(key=lambda r: (not r.failing, -r.failure_rate, r.destination, r.name))
    return rows
