"""Claim time as the history grows, on PostgreSQL (prints figures, asserts nothing).

Fills the store of ``core-plugin-postgres`` (a throw-away database, ``CORE_BENCH_POSTGRES``)
with finished jobs up to each size (default 10,000, 100,000 and 1,000,000 jobs), adds a
fresh backlog of due jobs at each step, and times ``claim`` of 100 jobs (median and p90 of
``--claims`` claims, after ``VACUUM ANALYZE``). Flat figures mean the claim index ignores
the history.

    python bench/claims_postgres.py [--sizes 10000 100000 1000000] [--claims 30] [--backlog]

``--backlog`` makes every job of the store due (a backlog that grows) instead of finished.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import UTC, datetime

import asyncpg
from _harness import scratch_database
from core_plugin_postgres.store import PostgresStore

from hookspecs import Claim, Event, Job, Queue, Status, new_id

CHUNK = 5000


def queue_of(count: int, action: str, status: Status) -> Queue:
    now = datetime.now(UTC)
    events = []
    for n in range(count):
        event_id = new_id()
        job = Job(id=new_id(), destination="bench", action=action, event_id=event_id, context={},
                  data={"n": n}, created_at=now, status=status)
        events.append(Event(id=event_id, source="bench", name="tick", context={}, data={"n": n},
                            received_at=now, jobs=[job]))
    return Queue(events=events)


async def run(url: str, sizes: list[int], claims: int, backlog: bool) -> None:
    history = Status.AWAITING if backlog else Status.SUCCEEDED
    store = PostgresStore(url)
    await store.open()
    admin = await asyncpg.connect(url)
    held = 0
    try:
        for size in sizes:
            started = time.perf_counter()
            while held < size - 10_000:
                count = min(CHUNK, size - 10_000 - held)
                await store.insert_queue(queue_of(count, "noop", history))
                held += count
            for _ in range(0, 10_000, CHUNK):
                await store.insert_queue(queue_of(CHUNK, "noop", Status.AWAITING))
            held += 10_000
            filled = time.perf_counter() - started
            await admin.execute("VACUUM ANALYZE")
            times = []
            for _ in range(claims):
                begin = time.perf_counter()
                jobs = await store.claim(Claim(owner="bench"), destination="bench", action="noop",
                                         limit=100, now=datetime.now(UTC))
                times.append((time.perf_counter() - begin) * 1000)
                assert len(jobs) == 100
            times.sort()
            kind = "due" if backlog else "finished"
            print(f"{held:>10,} jobs in the store ({kind}; filled in {filled:.0f}s): claim of 100 jobs "
                  f"median {statistics.median(times):.2f} ms, p90 {times[int(len(times) * 0.9)]:.2f} ms "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        await admin.close()
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--claims", type=int, default=30)
    parser.add_argument("--backlog", action="store_true", help="every job due, not finished")
    args = parser.parse_args()
    with scratch_database() as url:
        print(f"PostgreSQL database {url}, {os.cpu_count()} cores")
        asyncio.run(run(url, sorted(args.sizes), args.claims, args.backlog))


if __name__ == "__main__":
    main()
