"""Benchmark of HTTP ingest: durable ``202`` answers per second through the real gateway.

    python bench/ingest.py [--duration 10] [--connections 64] [--batch 100] [--keys]

It writes a tiny project in a temporary directory (one HTTP trigger, one flow, one action on
a schedule, the built-in SQLite store), starts ``core start gateway`` on it as a subprocess,
then runs a SEPARATE load-generating process: keep-alive connections on raw asyncio streams
(lighter than an HTTP library, so the client costs the 2 shared cores as little as possible)
posting single-event requests, then ``--batch``-event requests, for ``--duration`` seconds
each; with ``--keys`` every request has an ``Idempotency-Key`` of its own (each one new: the
cost of deduplication, not of replays). It prints events/s, requests/s and latency
percentiles of the ``202`` answers (each sent only after the commit), the gateway's CPU time
per event (a figure that holds on a busy shared machine, where events/s does not), then
checks that the store holds every acknowledged event.
Figures only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.testing.processes import Deployment

APP = """
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

class Export(Action):
    name = "export"
    schedule = Schedule(interval="@every 1h")

    async def load(self, toolkit, queue):
        return None

@hookimpl
def core_register_sources():
    return [Source("bench", [HttpTrigger("ingest", "/ingest")])]

@hookimpl
def core_register_destinations():
    return [Destination("warehouse", [Export()])]

@hookimpl
def core_register_flows():
    return [Flow("all", source="bench", actions=["warehouse.export"])]
"""

EVENT = {"name": "order.created", "context": {"ip": "127.0.0.1", "user_agent": "bench"},
         "data": {"order": 42, "total": 99.5, "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]}}


# -- the load generator (runs in its own process) ---------------------------------------------

async def _connection(host: str, port: int, request: bytes, deadline: float,
                      latencies: list[float], statuses: dict[int, int], keys: str) -> None:
    """Post ``request`` until ``deadline``; with ``keys`` (a prefix), each under a new key
    (``request`` then ends with its headers' last line, before the key and the body)."""
    reader, writer = await asyncio.open_connection(host, port)
    clock = time.perf_counter
    head, _, body = request.partition(b"\r\n\r\n")
    sent = 0
    try:
        while clock() < deadline:
            started = clock()
            if keys:
                sent += 1
                writer.write(head + f"\r\nIdempotency-Key: {keys}-{sent}\r\n\r\n".encode() + body)
            else:
                writer.write(request)
            status = int((await reader.readline()).split(b" ", 2)[1])
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(clock() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _load(url: str, per_request: int, duration: float, connections: int, keys: bool) -> dict[str, object]:
    match = re.match(r"http://([^:/]+):(\d+)", url)
    assert match, url
    host, port = match.group(1), int(match.group(2))
    document = EVENT if per_request == 1 else {"events": [EVENT] * per_request}
    body = json.dumps(document).encode()
    request = (f"POST /ingest HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    deadline = started + duration
    run = f"{os.getpid()}-{time.time_ns()}"
    await asyncio.gather(*(_connection(host, port, request, deadline, latencies, statuses,
                                       f"{run}-{i}" if keys else "")
                           for i in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else 0.0

    accepted = statuses.get(202, 0)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "client_cpu": (usage.ru_utime + usage.ru_stime) / elapsed,
        "requests": len(latencies), "seconds": elapsed, "statuses": statuses,
        "events_per_s": accepted * per_request / elapsed, "requests_per_s": len(latencies) / elapsed,
        "accepted_events": accepted * per_request,
        "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": latencies[-1] * 1000 if latencies else 0.0,
    }


def load_main(url: str, per_request: int, duration: float, connections: int, keys: bool) -> None:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(_load(url, per_request, duration, connections, keys))))


# -- the orchestrator --------------------------------------------------------------------------

def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_load(url: str, per_request: int, duration: float, connections: int, keys: bool) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--load", url, "--per-request", str(per_request),
         "--duration", str(duration), "--connections", str(connections), *(["--keys"] if keys else [])],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--connections", type=int, default=64, help="concurrent keep-alive connections")
    parser.add_argument("--batch", type=int, default=100, help="events per batch request")
    parser.add_argument("--keys", action="store_true", help="an Idempotency-Key (a new one) on every request")
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--per-request", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_main(args.load, args.per_request, args.duration, args.connections, args.keys)
        return
    settings = {"supervisor": "", "wanderer": ""}
    with tempfile.TemporaryDirectory(prefix="core-bench-") as tmp:
        directory = Path(tmp)
        with Deployment(directory, APP, settings=settings, env={"CORE_LOAD_PLUGINS": ""}) as deployment:
            gateway, url = deployment.start("gateway").process, deployment.url
            print(f"gateway {url} (pid {gateway.pid}), {os.cpu_count()} cores, {args.connections} connections, "
                  f"{args.duration:g}s per phase{', a new Idempotency-Key per request' if args.keys else ''}")
            accepted = 0
            _run_load(url, 1, 1.0, args.connections, args.keys)  # warm-up
            for per_request, label in ((1, "single-event"), (args.batch, f"{args.batch}-event batch")):
                cpu = _cpu_seconds(gateway.pid)
                result = _run_load(url, per_request, args.duration, args.connections, args.keys)
                cpu = _cpu_seconds(gateway.pid) - cpu
                events = int(result["accepted_events"])  # type: ignore[call-overload]
                accepted += events
                print(f"{label:>17}: {result['events_per_s']:>9,.0f} events/s  {result['requests_per_s']:>7,.0f} req/s"
                      f"  latency ms p50 {result['p50']:.1f}  p90 {result['p90']:.1f}  p99 {result['p99']:.1f}"
                      f"  max {result['max']:.1f}  statuses {result['statuses']}")
                print(f"{'':>17}  gateway CPU {cpu / float(result['seconds']):.0%} of a core"  # type: ignore[arg-type]
                      f", {cpu / max(events, 1) * 1e6:.0f} µs per event; load generator CPU "
                      f"{float(result['client_cpu']):.0%} of a core")  # type: ignore[arg-type]
        with sqlite3.connect(directory / "core.db") as db:
            (count,) = db.execute("SELECT count(*) FROM events").fetchone()
        print(f"store holds {count:,} events; 202 answers acknowledged {accepted:,} (+ warm-up)")


if __name__ == "__main__":
    main()
