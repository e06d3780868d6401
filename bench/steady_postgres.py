"""Steady state through HTTP on PostgreSQL (prints figures, asserts nothing).

    python bench/steady_postgres.py [--rate 5000] [--duration 60] [--per-request 10] [--gateways 2]

``--gateways`` gateway processes (``core start gateway``) and one scheduler (``core start
scheduler``) run on a throw-away database of the local server (``CORE_BENCH_POSTGRES``) with
``core-plugin-postgres``; every event makes two jobs (two no-op batch actions loaded every
second), so 5,000 events/s are 10,000 jobs/s. A separate load-generating process posts
``--per-request``-event requests at a fixed rate over keep-alive connections spread over the
gateways, for ``--duration`` seconds: each request has a due time, and its latency counts from
that time (a gateway that falls behind is charged for the wait, not hidden by a slower client);
what is still due at the end is not sent, so the rate reached says how far behind it fell.

Every ``--sample`` seconds the bench reads the backlog (unfinished jobs in ``job_state``) and the
resident size of every process. It prints the rate reached, the ``202`` latency percentiles,
the backlog's samples and slope (jobs/s, a least-squares fit after the first quarter; flat when
it is within 1 % of the job rate), and each process's peak RSS (``VmHWM``) beside its RSS at the
end of the first quarter: bounded when the two stay close.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
from _harness import (
    EVENT,
    load_average,
    read_answer,
    rss_mb,
    scratch_database,
    start_gateway,
    start_scheduler,
    stop,
)

from hookspecs import FINAL_STATUSES

APP = """
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

class Noop(Action):
    schedule = Schedule(interval="@every 1s")

    async def load(self, toolkit, queue):
        return None

class Export(Noop):
    name = "export"

class Archive(Noop):
    name = "archive"

@hookimpl
def core_register_sources():
    return [Source("bench", [HttpTrigger("ingest", "/ingest")])]

@hookimpl
def core_register_destinations():
    return [Destination("warehouse", [Export(), Archive()])]

@hookimpl
def core_register_flows():
    return [Flow("all", source="bench", actions=["warehouse.export", "warehouse.archive"])]
"""

#: Jobs each event makes (the flow's actions).
JOBS_PER_EVENT = 2


# -- the load generator (runs in its own process) ---------------------------------------------

async def _connection(url: str, body: bytes, start: float, interval: float, offset: float, deadline: float,
                      latencies: list[float], statuses: dict[int, int]) -> None:
    found = re.match(r"http://([^:/]+):(\d+)", url)
    assert found, url
    reader, writer = await asyncio.open_connection(found.group(1), int(found.group(2)))
    request = (f"POST /ingest HTTP/1.1\r\nHost: {found.group(1)}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    clock = time.perf_counter
    due = start + offset
    try:
        while due < deadline and clock() < deadline:  # behind at the end: the rest is not sent
            wait = due - clock()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(request)
            status, _ = await read_answer(reader)
            latencies.append(clock() - due)
            statuses[status] = statuses.get(status, 0) + 1
            due += interval
    finally:
        writer.close()


async def _load(urls: list[str], rate: float, per_request: int, duration: float, connections: int) -> dict[str, object]:
    body = json.dumps(EVENT if per_request == 1 else {"events": [EVENT] * per_request}).encode()
    interval = connections * per_request / rate  # each connection's time between requests
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter() + 0.1
    await asyncio.gather(*(
        _connection(urls[i % len(urls)], body, start, interval, i * interval / connections, start + duration,
                    latencies, statuses)
        for i in range(connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else 0.0

    return {"events_per_s": statuses.get(202, 0) * per_request / elapsed, "statuses": statuses,
            "p50": pct(50), "p99": pct(99), "max": latencies[-1] * 1000 if latencies else 0.0,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def load_main(urls: list[str], rate: float, per_request: int, duration: float, connections: int) -> None:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(_load(urls, rate, per_request, duration, connections))))


# -- the orchestrator --------------------------------------------------------------------------

async def _backlog(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM job_state WHERE NOT (status = ANY($1::text[]))",
                                         [status.value for status in FINAL_STATUSES])
        return count
    finally:
        await conn.close()


def _vm_rss(pid: int) -> float:
    """Current resident size (MiB) of a running process (Linux ``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _slope(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope (jobs/s) of backlog samples ``(seconds, jobs)``."""
    if len(samples) < 2:
        return 0.0
    mean_t = statistics.fmean(t for t, _ in samples)
    mean_b = statistics.fmean(b for _, b in samples)
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    return sum((t - mean_t) * (b - mean_b) for t, b in samples) / spread if spread else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=5000.0, help="events per second offered")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--per-request", type=int, default=10, help="events per HTTP request")
    parser.add_argument("--gateways", type=int, default=2, help="gateway processes sharing the database")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections in all")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between backlog and RSS samples")
    parser.add_argument("--load", nargs="+", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_main(args.load, args.rate, args.per_request, args.duration, args.connections)
        return
    with scratch_database() as url, tempfile.TemporaryDirectory(prefix="core-bench-") as tmp:
        directory = Path(tmp)
        (directory / "app.py").write_text(APP)
        (directory / "core.toml").write_text(
            f'app = "app.py"\nstore = "{url}"\npubsub = ""\nsupervisor = "{url}"\nwanderer = ""\n')
        env = {"CORE_LOAD_PLUGINS": "postgres"}
        gateways = [start_gateway(directory, env) for _ in range(args.gateways)]
        scheduler = start_scheduler(directory, env)
        processes = {f"gateway {i + 1}": g[0] for i, g in enumerate(gateways)} | {"scheduler": scheduler}
        try:
            print(f"{args.gateways} gateway(s) and a scheduler on PostgreSQL; {args.rate:,.0f} events/s "
                  f"({args.rate * JOBS_PER_EVENT:,.0f} jobs/s) in requests of {args.per_request} for "
                  f"{args.duration:g}s over {args.connections} connections ({load_average()})", flush=True)
            load = subprocess.Popen(
                [sys.executable, __file__, "--load", *[g[1] for g in gateways], "--rate", str(args.rate),
                 "--per-request", str(args.per_request), "--duration", str(args.duration),
                 "--connections", str(args.connections)], stdout=subprocess.PIPE, text=True)
            started = time.monotonic()
            samples: list[tuple[float, int]] = []
            quarter_rss: dict[str, float] = {}
            while load.poll() is None:
                time.sleep(args.sample)
                at = time.monotonic() - started
                if at > args.duration:
                    break
                backlog = asyncio.run(_backlog(url))
                samples.append((at, backlog))
                rss = {name: _vm_rss(p.pid) for name, p in processes.items()}
                if not quarter_rss and at >= args.duration / 4:
                    quarter_rss = rss
                print(f"  {at:5.1f}s backlog {backlog:>8,} jobs  RSS "
                      + ", ".join(f"{name} {mb:.0f} MiB" for name, mb in rss.items()), flush=True)
            out, _ = load.communicate()
            result = json.loads(out)
            peaks = {name: rss_mb(p.pid) for name, p in processes.items()}
        finally:
            for process in processes.values():
                stop(process)
        steady = [(t, b) for t, b in samples if t >= args.duration / 4]
        slope = _slope(steady)
        flat = abs(slope) <= 0.01 * args.rate * JOBS_PER_EVENT
        print(f"steady state: {result['events_per_s']:,.0f} events/s ({result['events_per_s'] * JOBS_PER_EVENT:,.0f} "
              f"jobs/s) of {args.rate:,.0f} offered, statuses {result['statuses']}")
        print(f"  202 latency from the due time: p50 {result['p50']:.1f} ms  p99 {result['p99']:.1f} ms  "
              f"max {result['max']:.1f} ms  (target p99 < 50 ms: {'met' if result['p99'] < 50 else 'NOT met'})")
        print(f"  backlog: max {max((b for _, b in samples), default=0):,} jobs, slope {slope:+,.0f} jobs/s after "
              f"the first quarter ({'flat' if flat else 'NOT flat'}), last {samples[-1][1] if samples else 0:,}")
        print("  peak RSS: " + ", ".join(
            f"{name} {peaks[name]:.0f} MiB (at a quarter {quarter_rss.get(name, 0):.0f})" for name in processes)
            + f", load generator {result['rss_mb']:.0f} MiB  ({load_average()})")


if __name__ == "__main__":
    main()
