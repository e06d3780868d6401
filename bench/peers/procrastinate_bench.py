"""Procrastinate beside core on the same PostgreSQL, same payload (prints figures, asserts nothing).

    python bench/peers/procrastinate_bench.py [--jobs 5000] [--batch 100] [--concurrency 10] [--rounds 3]

Each side gets a throw-away database of the local server (``CORE_BENCH_POSTGRES``), and the
runs are interleaved (A B A B, medians):

- **defer**: Procrastinate's ``batch_defer_async`` of ``--batch`` jobs per call, beside core's
  ``insert_queue`` of ``--batch`` events (each with one job) per call, on core-plugin-postgres;
- **worker**: a Procrastinate worker (``--concurrency`` concurrent jobs) running no-op jobs until
  the queue is empty, beside core's scheduler delivering the same number of jobs to a no-op
  batch action (``bench/deliver.py``'s backlog).

Procrastinate is a bench-only dependency: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import deliver
from _harness import EVENT, Clock, interleave, load_average, report, scratch_database
from procrastinate import App, PsycopgConnector

from core.config import load_settings
from core.runtime import Runtime


def procrastinate_app(url: str) -> tuple[App, object]:
    app = App(connector=PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    async def noop(**payload: object) -> None:
        return None

    return app, noop


async def procrastinate_run(url: str, jobs: int, batch: int, concurrency: int) -> tuple[float, float]:
    """Defer ``jobs`` jobs in batches, then work them all off; (deferred/s, worked/s)."""
    app, noop = procrastinate_app(url)
    async with app.open_async():
        await app.job_manager.connector.execute_query_async("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        await app.schema_manager.apply_schema_async()
        payload = {"context": EVENT["context"], "data": EVENT["data"]}
        clock = Clock()
        for _ in range(0, jobs, batch):
            await noop.batch_defer_async(*[payload] * batch)  # type: ignore[attr-defined]
        deferred = jobs / clock.elapsed()
        clock = Clock()
        await app.run_worker_async(concurrency=concurrency, wait=False, install_signal_handlers=False,
                                   listen_notify=False)
        worked = jobs / clock.elapsed()
    print(f"  procrastinate: defer {deferred:,.0f} jobs/s (batches of {batch}), worker {worked:,.0f} jobs/s "
          f"(concurrency {concurrency})", flush=True)
    return deferred, worked


async def core_run(url: str, directory: Path, jobs: int, batch: int) -> tuple[float, float]:
    """insert_queue ``jobs`` events in calls of ``batch``, then deliver them; (stored/s, delivered/s)."""
    settings = load_settings(cwd=directory, environ={}, overrides={
        "app": str(Path(deliver.__file__).resolve()), "store": url, "pubsub": "", "supervisor": "",
        "wanderer": "", "scheduler.batch_size": 500, "scheduler.poll_seconds": 5.0, "plugins.load": ["postgres"],
    })
    runtime = await Runtime.open(settings, services=["scheduler"])
    try:
        clock = Clock()
        for _ in range(0, jobs, batch):
            await runtime.store.insert_queue(deliver.queue_of(batch, "noop"))
        stored = jobs / clock.elapsed()
    finally:
        await runtime.close()
    deliver.open_runtime = lambda directory, batch_size: Runtime.open(settings, services=["scheduler"])
    delivered = await deliver.backlog(directory, jobs, 500)
    print(f"  core: insert_queue {stored:,.0f} events/s (calls of {batch}), delivery {delivered:,.0f} jobs/s",
          flush=True)
    return stored, delivered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with scratch_database("core_bench_peer") as url, tempfile.TemporaryDirectory(prefix="core-bench-") as tmp:
        results: dict[str, list[tuple[float, float]]] = {"core": [], "procrastinate": []}

        def core() -> float:
            with scratch_database() as core_url:
                results["core"].append(asyncio.run(core_run(core_url, Path(tmp), args.jobs, args.batch)))
            return 0.0

        def peer() -> float:
            results["procrastinate"].append(asyncio.run(procrastinate_run(url, args.jobs, args.batch,
                                                                          args.concurrency)))
            return 0.0

        print(f"Procrastinate vs core on PostgreSQL, {args.jobs:,} jobs, {args.rounds} interleaved rounds "
              f"({load_average()})")
        interleave({"core": core, "procrastinate": peer}, args.rounds)
        ours, theirs = results["core"], results["procrastinate"]
        report(f"PG defer/ingest, batches of {args.batch}", median(r[0] for r in ours), median(r[0] for r in theirs),
               "jobs/s", "procrastinate")
        report(f"PG delivery (peer: {args.concurrency} workers)", median(r[1] for r in ours),
               median(r[1] for r in theirs), "jobs/s", "procrastinate")

if __name__ == "__main__":
    main()
