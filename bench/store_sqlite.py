"""Benchmark of the built-in SQLite store: prints figures, asserts nothing.

    python bench/store_sqlite.py [--events 20000] [--concurrency 64]

- insert_queue at 1 and at 100 events per call, from many concurrent callers (group commit);
- claims: a backlog of jobs claimed ``--claim`` at a time until empty, then the same with
  each claimed batch marked ``succeeded`` (what delivery costs the store).
Each event carries one job. The database is a fresh file in a temporary directory. Each
figure is given per second of wall time and per second of this process's CPU time (all its
threads): on a machine shared with other work the second says what the store costs.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from datetime import UTC, datetime

from _harness import Clock, load_average

from core.builtin.sqlite.store import SQLiteStore
from hookspecs import Claim, Event, Job, Queue, Status, Transition, new_id


def make_events(count: int, *, action: str = "load") -> list[Event]:
    now = datetime.now(UTC)
    out = []
    for _ in range(count):
        event_id = new_id()
        job = Job(id=new_id(), destination="bench", action=action, event_id=event_id,
                  context={"ip": "127.0.0.1"}, data={"order": 42, "items": [1, 2, 3]}, created_at=now)
        out.append(Event(id=event_id, source="shop", name="order.created", context={"ip": "127.0.0.1"},
                         data={"order": 42, "items": [1, 2, 3]}, received_at=now, jobs=[job]))
    return out


def rates(clock: Clock, count: int) -> str:
    return f"{count / clock.elapsed():>9,.0f}/s wall {count / clock.cpu_used():>9,.0f}/s cpu"


async def ingest(store: SQLiteStore, events: list[Event], per_call: int, concurrency: int) -> str:
    calls = [events[i:i + per_call] for i in range(0, len(events), per_call)]
    queue: asyncio.Queue[list[Event]] = asyncio.Queue()
    for call in calls:
        queue.put_nowait(call)

    async def worker() -> None:
        while not queue.empty():
            await store.insert_queue(Queue(queue.get_nowait()))

    clock = Clock()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return rates(clock, len(events))


async def deliver(store: SQLiteStore, action: str, batch: int, *, finish: bool) -> tuple[int, str]:
    claim, total = Claim(owner="bench"), 0
    clock = Clock()
    while True:
        now = datetime.now(UTC)
        jobs = await store.claim(claim, destination="bench", action=action, limit=batch, now=now)
        if not jobs:
            break
        total += len(jobs)
        if finish:
            await store.add_transitions([
                Transition(id=new_id(), job_id=j.id, event_id=j.event_id, attempt=j.attempt,
                           state_before=Status.EXECUTING, state_after=Status.SUCCEEDED, created_at=now)
                for j in jobs
            ])
    return total, rates(clock, total)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--claim", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(f"sqlite:///{tmp}/bench.db")
        await store.open()
        try:
            print(f"{load_average()}  events per run: {args.events}  concurrency: {args.concurrency}")
            for per_call in (1, 100):
                before = (store.stats.transactions, store.stats.calls)
                rate = await ingest(store, make_events(args.events, action=f"load{per_call}"), per_call,
                                    args.concurrency)
                tx, calls = store.stats.transactions - before[0], store.stats.calls - before[1]
                print(f"insert_queue {per_call:>3} event(s)/call: events {rate} "
                      f"({calls} calls in {tx} transactions)")
            for action, finish in (("load1", False), ("load100", True)):
                count, rate = await deliver(store, action, args.claim, finish=finish)
                what = "claim + succeeded" if finish else "claim only      "
                print(f"{what} ({args.claim}/claim):   jobs {rate} ({count} jobs)")
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
