"""Delivery benchmark of the scheduler on the built-in SQLite store (prints figures, asserts nothing).

1. Backlog: fill the store with N jobs (default 30,000) of a no-op batch action, start the
   scheduler, and time until every job is ``succeeded`` (jobs/s), interleaved with the raw
   baseline (sqlite3 alone: the same rows, claimed and finished a batch at a time,
   :func:`_harness.raw_claim_and_result`); core's figure, the baseline's and the ratio.
2. Jobs per event: the same backlog with 1 and with 3 destinations per event; jobs/s, and the
   CPU per job of ingest (``insert_queue``) and of delivery, which must not grow with them.
3. Realtime latency: ingest single-event commits at a steady rate (default 1,000 events/s) on
   the in-memory broker, as the gateway does (commit, then publish), and measure the time from
   the ``insert_queue`` commit to the start of the ``load`` that receives the job (p50, p99).

    python bench/deliver.py [--jobs 30000] [--rounds 3] [--batch-size 500] [--rate 1000] [--seconds 5]
                            [--rate-limit 1000000/s] [--ordering] [--concurrency 1000000] [--compare]
                            [--skip backlog|raw|destinations|latency]

Each delivery control is switched on for the backlog's action so that it never holds a job back,
to measure its bookkeeping alone; without the flags the action has none:

- ``--rate-limit`` a rate limit (burst: one batch) so high it never throttles: one more store
  transaction per claim (the token bucket);
- ``--ordering`` an ordering key (``data.n``) different for every job: the claim's check that no
  earlier job of the key is unfinished;
- ``--concurrency`` a limit far above the backlog: the claim's count of the executing jobs, and
  the next batch claimed after the load instead of while it runs.

``--compare`` runs, interleaved, the backlog with every control off and with each one on (and
the raw baseline), and prints each figure (median, range) beside the off figure with the ratio.

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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _harness import (
    EVENT,
    Clock,
    create_store_file,
    event_loop_factory,
    interleave_all,
    load_average,
    peak_rss_mb,
    plot_latencies,
    plot_throughput,
    raw_claim_and_result,
    raw_connection,
    raw_insert,
    report,
    spread,
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
    """The runtime of a run (``bench/deliver_postgres.py`` replaces it with PostgreSQL's)."""
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


def queue_of(count: int, action: str, destinations: list[str] | None = None, offset: int = 0,
             ordering: bool = False) -> Queue:
    """``count`` events of the bench payload, each with one job per destination (``ordering``:
    each job with its own ordering key, never held back)."""
    now = datetime.now(UTC)
    events = []
    for n in range(offset, offset + count):
        event_id = new_id()
        jobs = [Job(id=new_id(), destination=name, action=action, event_id=event_id,
                    context=EVENT["context"], data=EVENT["data"], created_at=now,
                    **({"ordering_key": f"{name}-{n}"} if ordering else {}))  # runs on a core without it too
                for name in destinations or ["bench"]]
        events.append(Event(id=event_id, source="bench", name="tick", context=EVENT["context"], data=EVENT["data"],
                            received_at=now, jobs=jobs))
    return Queue(events=events)


#: Per label of a run, the CPU microseconds per job of each of its runs: ``(ingest, delivery)``.
CPU: dict[str, list[tuple[float, float]]] = {}


async def backlog(directory: Path, jobs: int, batch_size: int, rate_limit: str | None = None, *,
                  ordering: bool = False, concurrency: int | None = None, destinations: int = 1,
                  label: str = "core") -> float:
    """Fill the store with ``jobs`` jobs (``destinations`` per event), deliver them all; jobs/s."""
    runtime = await open_runtime(directory, batch_size)
    try:
        per_event = [f"bench{n}" if n else "bench" for n in range(destinations)]
        events = jobs // destinations
        jobs = events * destinations
        fill = Clock()
        for offset in range(0, events, 2000):
            await runtime.store.insert_queue(queue_of(min(2000, events - offset), "noop", per_event, offset, ordering))
        ingest_cpu = fill.cpu_used() / jobs * 1e6
        # The app is this file imported again under another name: its Noop is not our class.
        noops: list[Any] = [runtime.pipeline.destinations[name].actions["noop"] for name in per_event]
        for noop in noops:
            noop.rate_limit, noop.rate_burst = rate_limit, batch_size
            noop.concurrency = concurrency
        stop = asyncio.Event()
        clock = Clock()
        task = asyncio.create_task(run_scheduler(runtime, stop))
        while sum(noop.loaded for noop in noops) < jobs:
            await asyncio.sleep(0.005)
        left = WhereJob(actions_in=["noop"], status_not_in=[Status.SUCCEEDED], page=Page(limit=1))
        while await runtime.store.find_jobs(left):
            await asyncio.sleep(0.005)
        elapsed, cpu = clock.elapsed(), clock.cpu_used() / jobs * 1e6
        stop.set()
        await task
        CPU.setdefault(label, []).append((ingest_cpu, cpu))
        print(f"  {label}: {jobs:,} jobs in {elapsed:.2f}s ({destinations} destination(s) per event): "
              f"{jobs / elapsed:,.0f} jobs/s; CPU per job: ingest {ingest_cpu:.0f} µs, delivery {cpu:.0f} µs "
              f"(all threads)", flush=True)
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


#: The raw baseline of a run: ``(directory, jobs, batch_size)`` to jobs/s (PostgreSQL's replaces it).
RawBacklog = Callable[[Path, int, int], float]
#: The name the figures give the raw baseline.
RAW_NAME = "raw claim+result"
#: The store's name in the figures' labels.
STORE = "SQLite"


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
        p95, p99 = (waits[min(len(waits) - 1, int(len(waits) * p))] for p in (0.95, 0.99))
        print(f"realtime: {len(waits):,}/{total:,} jobs at {total / sent_for:,.0f} events/s; commit -> load "
              f"p50 {statistics.median(waits):.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {waits[-1]:.1f} ms "
              f"(process CPU {busy:.0%} of one core, {load_average()}, peak RSS {peak_rss_mb():.0f} MiB)")
        return waits
    finally:
        await runtime.close()


#: The variants ``--compare`` runs: a name and the controls of the backlog's action.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("off", {}), ("rate limit on", {"rate_limit": "1000000/s"}),
    ("ordering on", {"ordering": True}), ("concurrency on", {"concurrency": 1_000_000}),
]


def _cpu(label: str, index: int) -> float:
    return statistics.median(run[index] for run in CPU[label])


def run_benches(args: argparse.Namespace, tmp: Path, raw_backlog: RawBacklog = raw_backlog,
                runner: Callable[[Awaitable[Any]], Any] | None = None) -> None:
    """The backlog (or ``--compare``), jobs per event and realtime sections ``args`` asks for."""
    loop_factory = event_loop_factory()

    def run_async(coroutine: Awaitable[Any]) -> Any:
        if runner is not None:
            return runner(coroutine)
        with asyncio.Runner(loop_factory=loop_factory) as asyncio_runner:
            return asyncio_runner.run(coroutine)  # type: ignore[arg-type]

    runs = itertools.count()

    def core(label: str, batch_size: int | None = None, **controls: Any) -> Callable[[], float]:
        def run() -> float:
            return float(run_async(backlog(tmp / f"core{next(runs)}", args.jobs, batch_size or args.batch_size,
                                           label=label, **controls)))
        return run

    def raw_at(batch_size: int) -> Callable[[], float]:
        return lambda: raw_backlog(tmp / f"raw{next(runs)}", args.jobs, batch_size)

    raw = raw_at(args.batch_size)

    if args.compare:
        print(f"{STORE} delivery controls, {args.jobs:,} jobs, batch {args.batch_size}, {args.rounds} interleaved "
              f"rounds of: {', '.join(name for name, _ in VARIANTS)}, raw")
        figures = interleave_all({name: core(name, **controls) for name, controls in VARIANTS} | {"raw": raw},
                                 args.rounds)
        off = statistics.median(figures["off"])
        report(f"{STORE} delivery, controls off", off, statistics.median(figures["raw"]), "jobs/s", RAW_NAME)
        for name, values in figures.items():
            if name not in ("off", "raw"):
                report(f"{STORE} delivery, {name}", statistics.median(values), off, "jobs/s", "off")
        for name, values in figures.items():
            cpu = f", delivery CPU {_cpu(name, 1):.0f} µs/job" if name in CPU else ""
            print(f"  {name:<16} jobs/s median (range) {spread(values)}{cpu}")
    elif "backlog" not in args.skip:
        controls = {"rate_limit": args.rate_limit, "ordering": args.ordering, "concurrency": args.concurrency}
        print(f"{STORE} delivery, {args.jobs:,} jobs of a no-op batch action, batch {args.batch_size}, "
              f"rate limit {args.rate_limit or 'none'}, ordering {'on' if args.ordering else 'off'}, "
              f"concurrency {args.concurrency or 'none'}, {args.rounds} interleaved rounds")
        pair = {"core": core("core", **controls)} | ({} if "raw" in args.skip else {"raw": raw})
        figures = interleave_all(pair, args.rounds)
        if "raw" in figures:
            report(f"{STORE} delivery (jobs/s)", statistics.median(figures["core"]),
                   statistics.median(figures["raw"]), "jobs/s", RAW_NAME, target=0.4 if STORE == "SQLite" else 0.8)
        print(f"  core jobs/s {spread(figures['core'])}"
              f"{'' if 'raw' not in figures else ', raw ' + spread(figures['raw'])}; "
              f"core delivery CPU {_cpu('core', 1):.0f} µs/job  ({load_average()})")
    if args.sweep:
        sizes = [int(size) for size in args.sweep.split(",")]
        print(f"{STORE} delivery against batch size, {args.jobs:,} jobs, {args.rounds} interleaved rounds per size")
        medians: dict[str, list[float]] = {"core": [], "raw": []}
        for size in sizes:
            figures = interleave_all({"core": core(f"batch {size}", batch_size=size), "raw": raw_at(size)},
                                     args.rounds)
            for name in medians:
                medians[name].append(statistics.median(figures[name]))
            report(f"{STORE} delivery, batch {size}", medians["core"][-1], medians["raw"][-1], "jobs/s", RAW_NAME)
        if args.sweep_plot:
            plot_throughput(sizes, {"core": medians["core"], RAW_NAME: medians["raw"]}, Path(args.sweep_plot),
                            f"delivery, {STORE} ({load_average()})")
    if "destinations" not in args.skip:
        print(f"{STORE} jobs per event: 1 and 3 destinations (cost per job must not grow), {args.rounds} rounds")
        figures = interleave_all({"1 dest": core("1 dest"), "3 dest": core("3 dest", destinations=3)}, args.rounds)
        report(f"{STORE} delivery, 3 vs 1 destination(s)/event", statistics.median(figures["3 dest"]),
               statistics.median(figures["1 dest"]), "jobs/s", "1 dest", target=1.0)
        for index, what in ((0, "ingest"), (1, "delivery")):
            one, three = _cpu("1 dest", index), _cpu("3 dest", index)
            print(f"  {what} CPU per job: 3 destinations {three:.0f} µs, 1 destination {one:.0f} µs, "
                  f"ratio {three / one:.2f}x (must not exceed ~1.0x)  ({load_average()})")
    if "latency" not in args.skip:
        waits = run_async(latency(tmp / "latency", args.rate, args.seconds))
        if args.plot:
            plot_latencies(waits, Path(args.plot), f"realtime, {STORE}, {args.rate:,} events/s ({load_average()})")


def parser() -> argparse.ArgumentParser:
    """The options of this bench (``bench/deliver_postgres.py`` takes the same)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=30_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of core and raw (medians)")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate-limit", default=None, help='e.g. "1000000/s": bookkeeping without throttling')
    parser.add_argument("--ordering", action="store_true", help="one ordering key per job: the check alone")
    parser.add_argument("--concurrency", type=int, default=None, help="e.g. 1000000: the count without a limit")
    parser.add_argument("--compare", action="store_true", help="controls off and each one on, interleaved")
    parser.add_argument("--plot", default=None, help="a PNG of the realtime latency distribution, e.g. "
                        "docs/realtime-latency.png")
    parser.add_argument("--sweep", default=None, help="batch sizes to compare core and raw at, e.g. "
                        "50,100,200,500,1000")
    parser.add_argument("--sweep-plot", default=None, help="a PNG of throughput against batch size (with --sweep), "
                        "e.g. docs/delivery-batch-size.png")
    parser.add_argument("--skip", choices=["backlog", "raw", "destinations", "latency"], action="append", default=[],
                        help="leave a section out (raw: the backlog without its baseline, e.g. on an older core)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="core-bench-") as tmp:
        run_benches(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
