"""``bench/ingest.py`` against PostgreSQL (prints figures, asserts nothing).

The same HTTP ingest runs as ``bench/ingest.py`` (single-event, then batch requests from a
separate load-generating process, each ``202`` sent after the commit), with the gateway's
store on a throw-away database of the local server (``CORE_BENCH_POSTGRES``) through
``core-plugin-postgres``.

    python bench/ingest_postgres.py [--duration 10] [--connections 64] [--batch 100] [--keys]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import ingest
from postgres_common import scratch_database


def start_gateway(directory: Path) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")} | {"CORE_LOAD_PLUGINS": "postgres"}
    log = (directory / "gateway.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "core", "start", "gateway", "--port", "0"],
                               cwd=directory, env=env, text=True, stdout=subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"listening on (http://\S+)", line)
    if not found:
        process.kill()
        raise SystemExit(f"the gateway did not start:\n{line}{(directory / 'gateway.log').read_text()}")
    return process, found.group(1)


async def count_events(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM events")
        return count
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--connections", type=int, default=64, help="concurrent keep-alive connections")
    parser.add_argument("--batch", type=int, default=100, help="events per batch request")
    parser.add_argument("--keys", action="store_true", help="an Idempotency-Key (a new one) on every request")
    args = parser.parse_args()
    with scratch_database() as url, tempfile.TemporaryDirectory(prefix="core-bench-") as tmp:
        directory = Path(tmp)
        (directory / "app.py").write_text(ingest.APP)
        (directory / "core.toml").write_text(
            f'app = "app.py"\nstore = "{url}"\npubsub = ""\nsupervisor = ""\nwanderer = ""\n'
        )
        gateway, address = start_gateway(directory)
        print(f"gateway {address} (pid {gateway.pid}) on PostgreSQL, {os.cpu_count()} cores, "
              f"{args.connections} connections, {args.duration:g}s per phase"
              f"{', a new Idempotency-Key per request' if args.keys else ''}")
        accepted, mode = 0, "idempotent" if args.keys else "none"
        try:
            ingest._run_load(address, 1, 1.0, args.connections, mode)  # warm-up
            for per_request, label in ((1, "single-event"), (args.batch, f"{args.batch}-event batch")):
                cpu = ingest._cpu_seconds(gateway.pid)
                result = ingest._run_load(address, per_request, args.duration, args.connections, mode)
                cpu = ingest._cpu_seconds(gateway.pid) - cpu
                events = int(result["accepted_events"])  # type: ignore[call-overload]
                accepted += events
                print(f"{label:>17}: {result['events_per_s']:>9,.0f} events/s  {result['requests_per_s']:>7,.0f} req/s"
                      f"  latency ms p50 {result['p50']:.1f}  p90 {result['p90']:.1f}  p99 {result['p99']:.1f}"
                      f"  max {result['max']:.1f}  statuses {result['statuses']}")
                print(f"{'':>17}  gateway CPU {cpu / float(result['seconds']):.0%} of a core"  # type: ignore[arg-type]
                      f", {cpu / max(events, 1) * 1e6:.0f} µs per event")
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(60)
        count = asyncio.run(count_events(url))
        print(f"store holds {count:,} events; 202 answers acknowledged {accepted:,} (+ warm-up)")


if __name__ == "__main__":
    main()
