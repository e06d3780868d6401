"""Delivery benchmark of the scheduler on the built-in SQLite store (prints figures, asserts nothing).

1. Backlog: fill the store with N jobs (default 30,000) of a no-op batch action, start the
   scheduler, and time until every job is ``succeeded`` (jobs/s), interleaved with the raw
   baseline (sqlite3 alone: the same rows, claimed and finished a batch at a time); then the
   same backlog with 1 and with 3 destinations per event (jobs/s must not fall).
2. Realtime latency: ingest single-event commits at a steady rate (default 1,000 events/s) on
   the in-memory broker, as the gateway does (commit, then publish), and measure the time from
   the ``insert_queue`` commit to the start of the ``load`` that receives the job (p50, p99).

    python bench/deliver.py [--jobs 30000] [--rounds 3] [--rate 1000] [--seconds 5] [--batch-size 500]
                            [--rate-limit 1000000/s]

``--rate-limit`` gives the backlog's action a rate limit (burst: one batch) so high that it never
holds a job back: what is measured is the cost of the token bucket's bookkeeping (one store
transaction per claim); without it the action has no limit, as before.

Gateway and scheduler share one process and one event loop, as ``core start`` runs them.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _harness import (
    EVENT,
    Clock,
    create_store_file,
    event_loop_factory,
    interleave,
    load_average,
    peak_rss_mb,
    plot_latencies,
    raw_claim_and_result,
    raw_connection,
    raw_insert,
    report,
)

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
    return [Destination("bench", [Noop(), Realtime()]), Destination("bench1", [Noop()]),
            Destination("bench2", [Noop()])]


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


def queue_of(count: int, action: str, destinations: list[str] | None = None) -> Queue:
    """``count`` events of the bench payload, each with one job per destination."""
    now = datetime.now(UTC)
    events = []
    for _ in range(count):
        event_id = new_id()
        jobs = [Job(id=new_id(), destination=name, action=action, event_id=event_id,
                    context=EVENT["context"], data=EVENT["data"], created_at=now)
                for name in destinations or ["bench"]]
        events.append(Event(id=event_id, source="bench", name="tick", context=EVENT["context"], data=EVENT["data"],
                            received_at=now, jobs=jobs))
    return Queue(events=events)


async def backlog(directory: Path, jobs: int, batch_size: int, rate_limit: str | None = None,
                  destinations: int = 1) -> float:
    """Fill the store with ``jobs`` jobs (``destinations`` per event), deliver them all; jobs/s."""
    runtime = await open_runtime(directory, batch_size)
    try:
        per_event = [f"bench{n}" if n else "bench" for n in range(destinations)]
        events = jobs // destinations
        for offset in range(0, events, 2000):
            await runtime.store.insert_queue(queue_of(min(2000, events - offset), "noop", per_event))
        jobs = events * destinations
        # The app is this file imported again under another name: its Noop is not our class.
        noops: list[Any] = [runtime.pipeline.destinations[name].actions["noop"] for name in per_event]
        for noop in noops:
            noop.rate_limit, noop.rate_burst = rate_limit, batch_size
        stop = asyncio.Event()
        clock = Clock()
        task = asyncio.create_task(run_scheduler(runtime, stop))
        while sum(noop.loaded for noop in noops) < jobs:
            await asyncio.sleep(0.01)
        left = WhereJob(actions_in=["noop"], status_not_in=[Status.SUCCEEDED], page=Page(limit=1))
        while await runtime.store.find_jobs(left):
            await asyncio.sleep(0.01)
        elapsed, cpu = clock.elapsed(), clock.cpu_used()
        stop.set()
        await task
        print(f"  core: {jobs:,} jobs in {elapsed:.2f}s ({destinations} destination(s) per event): "
              f"{jobs / elapsed:,.0f} jobs/s, {cpu / jobs * 1e6:.0f} µs CPU per job", flush=True)
        return jobs / elapsed
    finally:
        await runtime.close()


def raw_backlog(path: Path, jobs: int, batch_size: int) -> float:
    """The raw baseline: the same jobs inserted by sqlite3, claimed and finished ``batch_size``
    at a time (:func:`_harness.raw_claim_and_result`); jobs/s."""
    create_store_file(path)
    db = raw_connection(path)
    try:
        for offset in range(0, jobs, 5000):
            raw_insert(db, [EVENT] * min(5000, jobs - offset), "bench", "noop")
        clock, done = Clock(), 0
        while count := raw_claim_and_result(db, "bench", "noop", batch_size):
            done += count
        elapsed = clock.elapsed()
        print(f"  raw:  {done:,} jobs in {elapsed:.2f}s: {done / elapsed:,.0f} jobs/s", flush=True)
        return done / elapsed
    finally:
        db.close()


async def latency(directory: Path, rate: int, seconds: float) -> list[float]:
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
        p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
        print(f"realtime: {len(waits):,}/{total:,} jobs at {total / sent_for:,.0f} events/s; commit -> load "
              f"p50 {statistics.median(waits):.1f} ms, p99 {p99:.1f} ms, max {waits[-1]:.1f} ms "
              f"(process CPU {busy:.0%} of one core, {load_average()}, peak RSS {peak_rss_mb():.0f} MiB)")
        return waits
    finally:
        await runtime.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=30_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of core and raw (medians)")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate-limit", default=None, help='e.g. "1000000/s": bookkeeping without throttling')
    parser.add_argument("--plot", default=str(Path(__file__).resolve().parent.parent / "docs" / "realtime-latency.png"),
                        help="where the PNG of the realtime latency distribution goes")
    parser.add_argument("--skip", choices=["backlog", "latency", "destinations"], action="append", default=[])
    args = parser.parse_args(argv)
    loop_factory = event_loop_factory()
    with tempfile.TemporaryDirectory(prefix="core-bench-") as tmp:
        runs = itertools.count()

        def core(destinations: int = 1) -> Callable[[], float]:
            def run() -> float:
                with asyncio.Runner(loop_factory=loop_factory) as runner:
                    return runner.run(backlog(Path(tmp) / f"core{next(runs)}", args.jobs, args.batch_size,
                                              args.rate_limit, destinations))
            return run

        def raw() -> float:
            return raw_backlog(Path(tmp) / f"raw{next(runs)}.db", args.jobs, args.batch_size)

        if "backlog" not in args.skip:
            print(f"SQLite delivery, {args.jobs:,} jobs of a no-op batch action, batch {args.batch_size}, "
                  f"rate limit {args.rate_limit or 'none'}, {args.rounds} interleaved rounds")
            figures = interleave({"core": core(), "raw": raw}, args.rounds)
            report("SQLite delivery (jobs/s)", figures["core"], figures["raw"], "jobs/s",
                   "raw claim+result", target=0.4)
        if "destinations" not in args.skip:
            print("jobs per event: 1 and 3 destinations (cost per job must not grow)")
            figures = interleave({"1": core(1), "3": core(3)}, args.rounds)
            report("delivery, 3 vs 1 destination(s)/event", figures["3"], figures["1"], "jobs/s", "1 dest",
                   target=1.0)
        if "latency" not in args.skip:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                waits = runner.run(latency(Path(tmp) / "latency", args.rate, args.seconds))
            plot_latencies(waits, Path(args.plot), f"realtime, memory pub/sub, {args.rate:,} events/s "
                           f"({load_average()})")


if __name__ == "__main__":
    sys.exit(main())
