"""Benchmark of Segment ingest (core-plugin-segment): events/s of ``/v1/batch`` beside the
plain HTTP trigger's batch, in the same run, through the real gateway.

    python bench/ingest_segment.py [--duration 5] [--connections 16] [--batch 100]

It starts ``core start gateway`` on a project with a plain trigger (``{"events": [...]}``, the
same write key as an :class:`~hookspecs.ApiKey` in HTTP Basic) and a ``SegmentSource``, one flow
each to an action on a schedule, the built-in SQLite store; then a separate load-generating
process (``bench/ingest.py``'s raw keep-alive connections) posts ``--batch``-message requests for
``--duration`` seconds a phase: the plain trigger (the baseline), Segment messages without a
``messageId``, and with a new ``messageId`` each (every message an idempotency key claimed in the
store). It prints events/s, latency percentiles and the gateway's CPU time per event, then how
many events the store holds. Figures only; it asserts nothing. Needs core-plugin-segment installed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _harness import EVENT, cpu_seconds, start_gateway, stop
from ingest import _connection

WRITE_KEY = "bench-write-key-0001"
BASIC = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()

APP = """
from core_plugin_segment import SegmentSource
from hookspecs import Action, ApiKey, Destination, Flow, HttpTrigger, Schedule, Secret, Source, hookimpl

class Export(Action):
    name = "export"
    schedule = Schedule(interval="@every 1h")

    async def load(self, toolkit, queue):
        return None

@hookimpl
def core_register_sources():
    return [Source("plain", [HttpTrigger("ingest", "/ingest", auth=ApiKey(Secret(env="BENCH_WRITE_KEY")))]),
            SegmentSource("web", write_keys=Secret(env="BENCH_WRITE_KEY"))]

@hookimpl
def core_register_destinations():
    return [Destination("warehouse", [Export()])]

@hookimpl
def core_register_flows():
    return [Flow("plain", source="plain", actions=["warehouse.export"]),
            Flow("web", source="web", actions=["warehouse.export"])]
"""

#: A Segment track call carrying what the plain EVENT carries.
MESSAGE = {"type": "track", "userId": "user-42", "event": "Order Created", "context": EVENT["context"],
           "properties": EVENT["data"], "timestamp": "2024-05-01T12:00:00Z"}
PHASES = {"plain": "/ingest", "segment": "/v1/batch", "segment+messageId": "/v1/batch"}
_ids = itertools.count()


def _requests(host: str, phase: str, size: int) -> Callable[[], bytes]:
    """What one connection sends: fixed bytes, or (``segment+messageId``) new message ids each time."""
    if phase == "plain":
        body = json.dumps({"events": [EVENT] * size}).encode()
    else:
        keyed = phase.endswith("messageId")
        body = json.dumps({"batch": [{**MESSAGE, "messageId": f"@@-{i}"} if keyed else MESSAGE
                                     for i in range(size)], "sentAt": "2024-05-01T12:00:01Z"}).encode()
    head = (f"POST {PHASES[phase]} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Basic {BASIC}\r\n").encode()
    if phase != "segment+messageId":
        fixed = head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        return lambda: fixed

    def fresh() -> bytes:
        unique = body.replace(b"@@", f"{os.getpid()}-{next(_ids):09d}".encode())
        return head + f"Content-Length: {len(unique)}\r\n\r\n".encode() + unique

    return fresh


async def _load(url: str, phase: str, size: int, duration: float, connections: int) -> dict[str, object]:
    match = re.match(r"http://([^:/]+):(\d+)", url)
    assert match, url
    host, port = match.group(1), int(match.group(2))
    request = _requests(host, phase, size)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, request, started + duration, latencies, statuses)
                           for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    ok = statuses.get(202, 0) + statuses.get(200, 0)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else 0.0

    return {"events": ok * size, "seconds": elapsed, "events_per_s": ok * size / elapsed, "statuses": statuses,
            "p50": pct(50), "p99": pct(99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--batch", type=int, default=100, help="messages per batch request")
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=list(PHASES), default="plain", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(asyncio.run(_load(args.load, args.phase, args.batch, args.duration, args.connections))))
        return
    with tempfile.TemporaryDirectory(prefix="core-bench-") as tmp:
        directory = Path(tmp)
        path = os.pathsep.join(p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH")) if p)
        env = {"BENCH_WRITE_KEY": WRITE_KEY, "PYTHONPATH": path}
        (directory / "app.py").write_text(APP)
        (directory / "core.toml").write_text(
            'app = "app.py"\nstore = "sqlite:///core.db"\nsupervisor = ""\nwanderer = ""\n')
        gateway, url = start_gateway(directory, env)
        try:
            print(f"gateway {url}, {os.cpu_count()} cores, {args.connections} connections, "
                  f"{args.batch}-message batches, {args.duration:g}s per phase")
            stored = 0
            for phase in PHASES:
                cpu = cpu_seconds(gateway.pid)
                out = subprocess.run([sys.executable, __file__, "--load", url, "--phase", phase, "--batch",
                                      str(args.batch), "--duration", str(args.duration),
                                      "--connections", str(args.connections)],
                                     check=True, capture_output=True, text=True)
                cpu = cpu_seconds(gateway.pid) - cpu
                result = json.loads(out.stdout)
                stored += result["events"]
                print(f"{phase:>18}: {result['events_per_s']:>8,.0f} events/s  latency ms p50 {result['p50']:.1f}"
                      f"  p99 {result['p99']:.1f}  gateway {cpu / max(result['events'], 1) * 1e6:.0f} µs/event"
                      f"  statuses {result['statuses']}")
        finally:
            stop(gateway)
        with sqlite3.connect(directory / "core.db") as db:
            (count,) = db.execute("SELECT count(*) FROM events").fetchone()
        print(f"store holds {count:,} events; answers acknowledged {stored:,}")


if __name__ == "__main__":
    main()
