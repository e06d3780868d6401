"""Delivery benchmark of the scheduler on the built-in SQLite store (prints figures, asserts nothing).

1. Backlog: fill the store with N jobs (default 100,000) of a no-op batch action, start the
   scheduler, and time until every job is ``succeeded`` (jobs/s).
2. Realtime latency: ingest single-event commits at a steady rate (default 1,000 events/s) on
   the in-memory broker, as the gateway does (commit, then publish), and measure the time from
   the ``insert_queue`` commit to the start of the ``load`` that receives the job (p50, p99).

    python bench/deliver.py [--jobs 100000] [--rate 1000] [--seconds 5] [--batch-size 500]
                            [--rate-limit 1000000/s] [--ordering] [--concurrency 1000000] [--compare]

Each delivery control is switched on for the backlog's action so that it never holds a job back,
to measure its bookkeeping alone; without the flags the action has none, as before:

- ``--rate-limit`` a rate limit (burst: one batch) so high it never throttles: one more store
  transaction per claim (the token bucket);
- ``--ordering`` an ordering key (``data.n``) different for every job: the claim's check that no
  earlier job of the key is unfinished;
- ``--concurrency`` a limit far above the backlog: the claim's count of the executing jobs, and
  the next batch claimed after the load instead of while it runs.

``--compare`` runs the backlog once per variant in the same process, one after the other, each on
a fresh store: off (the baseline), off again (the noise between two identical runs), then each
control on; it prints every figure beside the baseline's with the ratio.

Gateway and scheduler share one process and one event loop, as ``core start`` runs them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.config import load_settings
from core.ready_jobs import encode
from core.runtime import Runtime
from core.scheduler import run_scheduler
from hookspecs import (
    JOBS_TOPIC,
    Action,
    Destination,
    Event,
    Job,
    Page,
    Queue,
    Schedule,
    Status,
    Toolkit,
    WhereJob,
    hookimpl,
    new_id,
)


class Noop(Action):
    """A batch action that loads nothing: what is measured is the scheduler and the store."""

    name = "noop"
    schedule = Schedule(interval="@every 1h")

    def __init__(self) -> None:
        self.loaded = 0

    async def load(self, toolkit: Toolkit, queue: Queue) -> None:
        self.loaded += len(queue)


class Realtime(Action):
    """A realtime action noting when each job reached ``load``."""

    name = "rt"
    schedule = Schedule(realtime=True)

    def __init__(self) -> None:
        self.reached: dict[str, float] = {}

    async def load(self, toolkit: Toolkit, queue: Queue) -> None:
        now = time.perf_counter()
        for job in queue.jobs:
            self.reached[job.id] = now


@hookimpl
def core_register_destinations() -> list[Destination]:
    return [Destination("bench", [Noop(), Realtime()])]


async def open_runtime(directory: Path, batch_size: int) -> Runtime:
    settings = load_settings(cwd=directory, environ={}, overrides={
        "app": str(Path(__file__).resolve()),
        "store": f"sqlite:///{directory / 'bench.db'}",
        "pubsub": "memory://bench",
        "supervisor": "local://bench",
        "wanderer": "",
        "scheduler.batch_size": batch_size,
        "scheduler.poll_seconds": 5.0,
    })
    return await Runtime.open(settings, services=["scheduler"], no_plugins=True)


def queue_of(count: int, action: str) -> Queue:
    now = datetime.now(UTC)
    events = []
    for n in range(count):
        event_id = new_id()
        job = Job(id=new_id(), destination="bench", action=action, event_id=event_id,
                  context={}, data={"n": n}, created_at=now)
        events.append(Event(id=event_id, source="bench", name="tick", context={}, data={"n": n},
                            received_at=now, jobs=[job]))
    return Queue(events=events)


async def backlog(directory: Path, jobs: int, batch_size: int, rate_limit: str | None = None, *,
                  ordering: bool = False, concurrency: int | None = None) -> float:
    """Deliver a backlog of ``jobs``; return the jobs per second."""
    runtime = await open_runtime(directory, batch_size)
    try:
        started = time.perf_counter()
        for offset in range(0, jobs, 5000):
            queue = queue_of(min(5000, jobs - offset), "noop")
            for job in queue.jobs if ordering else ():
                job.ordering_key = str(job.data["n"] + offset)  # one key per job: never held back
            await runtime.store.insert_queue(queue)
        print(f"filled {jobs:,} jobs in {time.perf_counter() - started:.1f}s")
        # The app is this file imported again under another name: its Noop is not our class.
        noop: Any = runtime.pipeline.destinations["bench"].actions["noop"]
        noop.rate_limit, noop.rate_burst = rate_limit, batch_size
        noop.concurrency = concurrency
        stop = asyncio.Event()
        started, cpu = time.perf_counter(), time.process_time()
        task = asyncio.create_task(run_scheduler(runtime, stop))
        while noop.loaded < jobs:
            await asyncio.sleep(0.01)
        left = WhereJob(actions_in=["noop"], status_not_in=[Status.SUCCEEDED], page=Page(limit=1))
        while await runtime.store.find_jobs(left):
            await asyncio.sleep(0.01)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        stop.set()
        await task
        print(f"delivered {jobs:,} jobs in {elapsed:.2f}s: {jobs / elapsed:,.0f} jobs/s "
              f"(batch_size {batch_size}, rate_limit {rate_limit or 'none'}, ordering {'on' if ordering else 'off'}, "
              f"concurrency {concurrency or 'none'}, {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f}); process CPU {cpu:.2f}s = {cpu / jobs * 1e6:.0f} µs per job (all threads)")
        return jobs / elapsed
    finally:
        await runtime.close()


#: The variants ``--compare`` runs: a name and the controls of the backlog's action.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("off (baseline)", {}), ("off again", {}), ("rate limit on", {"rate_limit": "1000000/s"}),
    ("ordering on", {"ordering": True}), ("concurrency on", {"concurrency": 1_000_000}),
]


def compare(directory: Path, jobs: int, batch_size: int, loop_factory: Any) -> None:
    """Run every variant's backlog in this process, then print each beside the baseline."""
    figures = []
    for n, (name, controls) in enumerate(VARIANTS):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            figures.append((name, runner.run(backlog(directory / f"v{n}", jobs, batch_size, **controls))))
    baseline = figures[0][1]
    print(f"\nbacklog of {jobs:,} jobs, batch_size {batch_size}: jobs/s beside the baseline run (off)")
    for name, rate in figures:
        print(f"  {name:<16} {rate:>9,.0f} jobs/s   baseline {baseline:>9,.0f}   ratio {rate / baseline:.2f}")


async def latency(directory: Path, rate: int, seconds: float) -> None:
    runtime = await open_runtime(directory, 500)
    try:
        realtime: Any = runtime.pipeline.destinations["bench"].actions["rt"]
        assert runtime.pubsub is not None
        pubsub = runtime.pubsub
        stop = asyncio.Event()
        task = asyncio.create_task(run_scheduler(runtime, stop))
        await asyncio.sleep(0.5)  # the consumer joins the group
        committed: dict[str, float] = {}

        async def ingest_one() -> None:
            queue = queue_of(1, "rt")
            await runtime.store.insert_queue(queue)
            committed[queue.events[0].jobs[0].id] = time.perf_counter()
            await pubsub.publish(JOBS_TOPIC, encode(queue.jobs))

        total = int(rate * seconds)
        tick = 0.01
        per_tick = max(1, int(rate * tick))
        pending: set[asyncio.Task[None]] = set()
        begin, cpu = time.perf_counter(), time.process_time()
        for n in range(0, total, per_tick):
            for _ in range(min(per_tick, total - n)):
                t = asyncio.create_task(ingest_one())
                pending.add(t)
                t.add_done_callback(pending.discard)
            await asyncio.sleep(max(0.0, begin + (n + per_tick) / rate - time.perf_counter()))
        sent_for = time.perf_counter() - begin
        deadline = time.perf_counter() + 30
        while len(realtime.reached) < total and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        busy = (time.process_time() - cpu) / (time.perf_counter() - begin)
        stop.set()
        await task
        waits = sorted((realtime.reached[i] - t) * 1000 for i, t in committed.items() if i in realtime.reached)
        p95, p99 = (waits[min(len(waits) - 1, int(len(waits) * p))] for p in (0.95, 0.99))
        print(f"realtime: {len(waits):,}/{total:,} jobs at {total / sent_for:,.0f} events/s; commit -> load "
              f"p50 {statistics.median(waits):.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {waits[-1]:.1f} ms "
              f"(process CPU {busy:.0%} of one core, load average {os.getloadavg()[0]:.1f})")
    finally:
        await runtime.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate-limit", default=None, help='e.g. "1000000/s": bookkeeping without throttling')
    parser.add_argument("--ordering", action="store_true", help="one ordering key per job: the check alone")
    parser.add_argument("--concurrency", type=int, default=None, help="e.g. 1000000: the count without a limit")
    parser.add_argument("--compare", action="store_true", help="the backlog off, off again and each control on")
    parser.add_argument("--skip", choices=["backlog", "latency"], default=None)
    args = parser.parse_args(argv)
    loop_factory: Any = None
    try:  # the event loop ``core start`` uses when it is installed
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="core-bench-") as tmp:
        if args.compare:
            compare(Path(tmp), args.jobs, args.batch_size, loop_factory)
            return
        if args.skip != "backlog":
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(backlog(Path(tmp) / "backlog", args.jobs, args.batch_size, args.rate_limit,
                                   ordering=args.ordering, concurrency=args.concurrency))
        if args.skip != "latency":
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(latency(Path(tmp) / "latency", args.rate, args.seconds))


if __name__ == "__main__":
    sys.exit(main())
