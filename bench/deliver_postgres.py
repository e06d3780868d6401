"""``bench/deliver.py`` against PostgreSQL (prints figures, asserts nothing).

The same backlog and realtime-latency runs as ``bench/deliver.py``, with the store, the
pub/sub and the supervisor of ``core-plugin-postgres`` on a throw-away database of the local
server (``CORE_BENCH_POSTGRES``).

    python bench/deliver_postgres.py [--jobs 100000] [--rate 1000] [--seconds 5] [--batch-size 500]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import deliver
from _harness import scratch_database

from core.config import load_settings
from core.runtime import Runtime


def main() -> None:


    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--skip", choices=["backlog", "latency"], default=None)
    options = parser.parse_args()
    with scratch_database() as url, tempfile.TemporaryDirectory(prefix="core-bench-") as tmp:

        async def open_runtime(directory: Path, batch_size: int) -> Runtime:
            settings = load_settings(cwd=directory, environ={}, overrides={
                "app": str(Path(deliver.__file__).resolve()),
                "store": url, "pubsub": url, "supervisor": url, "wanderer": "",
                "scheduler.batch_size": batch_size, "scheduler.poll_seconds": 5.0,
                "plugins.load": ["postgres"],
            })
            return await Runtime.open(settings, services=["scheduler"])

        deliver.open_runtime = open_runtime
        print(f"PostgreSQL database {url}")
        if options.skip != "backlog":
            asyncio.run(deliver.backlog(Path(tmp), options.jobs, options.batch_size))
        if options.skip != "latency":
            asyncio.run(deliver.latency(Path(tmp), options.rate, options.seconds))


if __name__ == "__main__":
    sys.exit(main())
