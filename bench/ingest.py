"""Benchmark of HTTP ingest: durable ``202`` answers per second through the real gateway.

    python bench/ingest.py [--duration 10] [--connections 64] [--batch 100] [--keys]

It writes a tiny project in a temporary directory (three HTTP triggers, one flow, one action
on a schedule, the built-in SQLite store), starts ``core start gateway`` on it as a subprocess,
then runs a SEPARATE load-generating process: keep-alive connections on raw asyncio streams
(lighter than an HTTP library, so the client costs the 2 shared cores as little as possible)
posting single-event requests (to a trigger without auth, then to one with an API key, then to
one checking a Standard Webhooks signature, each request signed with a new message id), then
``--batch``-event requests (and, with ``--keys``, single events each with a new
``Idempotency-Key``), for ``--duration`` seconds each. It prints events/s, requests/s
and latency percentiles of the ``202`` answers (each sent only after the commit), the
gateway's CPU time per event (a figure that holds on a busy shared machine, where events/s
does not), then checks that the store holds every acknowledged event.
Figures only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from _harness import (
    EVENT,
    Clock,
    cpu_seconds,
    create_store_file,
    interleave,
    raw_connection,
    raw_insert,
    read_answer,
    report,
    rss_mb,
    start_gateway,
    start_parse_only,
    stop,
)

API_KEY = "bench-api-key-0001"
WHSEC = "whsec_" + base64.b64encode(b"bench secret of thirty-two bytes").decode()

APP = """
from hookspecs import (Action, ApiKey, Destination, Flow, HttpTrigger, Schedule, Secret, Source, StandardWebhook,
                       hookimpl)

class Export(Action):
    name = "export"
    schedule = Schedule(interval="@every 1h")

    async def load(self, toolkit, queue):
        return None

@hookimpl
def core_register_sources():
    return [Source("bench", [
        HttpTrigger("ingest", "/ingest"),
        HttpTrigger("keyed", "/keyed", auth=ApiKey(Secret(env="BENCH_API_KEY"))),
        HttpTrigger("signed", "/signed", auth=StandardWebhook(Secret(env="BENCH_WHSEC"))),
    ])]

@hookimpl
def core_register_destinations():
    return [Destination("warehouse", [Export()])]

@hookimpl
def core_register_flows():
    return [Flow("all", source="bench", actions=["warehouse.export"])]
"""


# -- the load generator (runs in its own process) ---------------------------------------------

#: The path and extra headers of each authentication mode.
MODES = {"none": "/ingest", "key": "/keyed", "signed": "/signed", "idempotent": "/ingest"}
_ids = itertools.count()


def _requests(host: str, mode: str, body: bytes) -> Callable[[], bytes]:
    """What one connection sends: the same bytes each time, or (signed, idempotent) a new message
    or a new idempotency key each time."""
    head = f"POST {MODES[mode]} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    tail = f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    if mode == "idempotent":
        return lambda: (head + f"Idempotency-Key: bench-{os.getpid()}-{next(_ids)}\r\n").encode() + tail
    if mode != "signed":
        fixed = (head + (f"X-API-Key: {API_KEY}\r\n" if mode == "key" else "")).encode() + tail
        return lambda: fixed
    key = base64.b64decode(WHSEC.removeprefix("whsec_"))

    def signed() -> bytes:
        message_id, stamp = f"msg_{os.getpid()}_{next(_ids)}", str(int(time.time()))
        mac = hmac.new(key, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        return (head + f"webhook-id: {message_id}\r\nwebhook-timestamp: {stamp}\r\n"
                f"webhook-signature: v1,{base64.b64encode(mac).decode()}\r\n").encode() + tail

    return signed


async def _connection(host: str, port: int, request: Callable[[], bytes], deadline: float,
                      latencies: list[float], statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    clock = time.perf_counter
    try:
        while clock() < deadline:
            started = clock()
            writer.write(request())
            status, _ = await read_answer(reader)
            latencies.append(clock() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _load(url: str, per_request: int, duration: float, connections: int, mode: str) -> dict[str, object]:
    match = re.match(r"http://([^:/]+):(\d+)", url)
    assert match, url
    host, port = match.group(1), int(match.group(2))
    document = EVENT if per_request == 1 else {"events": [EVENT] * per_request}
    request = _requests(host, mode, json.dumps(document).encode())
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*(_connection(host, port, request, deadline, latencies, statuses)
                           for _ in range(connections)))
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


def load_main(url: str, per_request: int, duration: float, connections: int, mode: str) -> None:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(_load(url, per_request, duration, connections, mode))))


# -- the orchestrator --------------------------------------------------------------------------

def _run_load(url: str, per_request: int, duration: float, connections: int, mode: str = "none") -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--load", url, "--per-request", str(per_request),
         "--duration", str(duration), "--connections", str(connections), "--mode", mode],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _phase(label: str, pid: int, url: str, per_request: int, args: argparse.Namespace, mode: str = "none") -> float:
    """One timed load against the server ``pid``; prints its line, returns events/s."""
    cpu = cpu_seconds(pid)
    result = _run_load(url, per_request, args.duration, args.connections, mode)
    cpu = cpu_seconds(pid) - cpu
    events = int(result["accepted_events"])  # type: ignore[call-overload]
    print(f"  {label:>24}: {result['events_per_s']:>9,.0f} events/s  {result['requests_per_s']:>7,.0f} req/s"
          f"  latency ms p50 {result['p50']:.1f}  p99 {result['p99']:.1f}  statuses {result['statuses']}"
          f"  server CPU {cpu / max(events, 1) * 1e6:.0f} µs/event, peak RSS {rss_mb(pid):.0f} MiB", flush=True)
    return float(result["events_per_s"])  # type: ignore[arg-type]


def raw_ingest(path: Path, per_request: int, duration: float) -> float:
    """The raw baseline: sqlite3 inserting the same rows, ``per_request`` events per transaction
    (the JSON decoded from the request body first, as the gateway does); events/s."""
    db = raw_connection(path)
    body = json.dumps({"events": [EVENT] * per_request}).encode()
    try:
        clock, done = Clock(), 0
        while clock.elapsed() < duration:
            raw_insert(db, orjson.loads(body)["events"])
            done += per_request
        rate = done / clock.elapsed()
        print(f"  {'raw sqlite3 insert':>24}: {rate:>9,.0f} events/s ({per_request} per transaction)", flush=True)
        return rate
    finally:
        db.close()


def write_project(directory: Path, store: str) -> None:
    """The bench's project: :data:`APP` and a ``core.toml`` naming ``store``."""
    (directory / "app.py").write_text(APP)
    (directory / "core.toml").write_text(
        f'app = "app.py"\nstore = "{store}"\npubsub = ""\nsupervisor = ""\nwanderer = ""\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--connections", type=int, default=64, help="concurrent keep-alive connections")
    parser.add_argument("--batch", type=int, default=100, help="events per batch request")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of core and baseline (medians)")
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--per-request", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=list(MODES), default="none", help=argparse.SUPPRESS)
    parser.add_argument("--auth", action="store_true", help="also single events with an API key, a signature")
    parser.add_argument("--keys", action="store_true", help="also single events with a new Idempotency-Key each")
    args = parser.parse_args()
    if args.load:
        load_main(args.load, args.per_request, args.duration, args.connections, args.mode)
        return
    with tempfile.TemporaryDirectory(prefix="core-bench-") as tmp:
        directory = Path(tmp)
        write_project(directory, "sqlite:///core.db")
        env = {"CORE_LOAD_PLUGINS": "", "BENCH_API_KEY": API_KEY, "BENCH_WHSEC": WHSEC}
        gateway, url = start_gateway(directory, env)
        parse_only, parse_url = start_parse_only(directory)
        raw_db = directory / "raw.db"
        create_store_file(raw_db)
        try:
            print(f"gateway {url} (pid {gateway.pid}) on SQLite, parse-only Starlette {parse_url}, "
                  f"{args.connections} connections, {args.duration:g}s per phase, {args.rounds} interleaved rounds")
            _run_load(url, 1, 1.0, args.connections)  # warm-up
            _run_load(parse_url, 1, 1.0, args.connections)
            single = interleave({
                "core": lambda: _phase("core single-event", gateway.pid, url, 1, args),
                "parse": lambda: _phase("parse-only single-event", parse_only.pid, parse_url, 1, args),
            }, args.rounds)
            report("SQLite HTTP ingest, 1 event/request", single["core"], single["parse"], "events/s",
                   "parse-only", target=0.8)
            batch = interleave({
                "core": lambda: _phase(f"core {args.batch}-event", gateway.pid, url, args.batch, args),
                "raw": lambda: raw_ingest(raw_db, args.batch, args.duration),
            }, args.rounds)
            report(f"SQLite HTTP ingest, {args.batch} events/request", batch["core"], batch["raw"], "events/s",
                   "raw insert", target=0.5)
            extra = ([("key", "+ API key"), ("signed", "+ std webhook")] if args.auth else []) + (
                [("idempotent", "+ idempotency key")] if args.keys else [])
            for mode, label in extra:
                _phase(label, gateway.pid, url, 1, args, mode)
        finally:
            stop(gateway)
            stop(parse_only)
        with sqlite3.connect(directory / "core.db") as db:
            (count,) = db.execute("SELECT count(*) FROM events").fetchone()
        print(f"store holds {count:,} events (every 202 answer's, + warm-up)")


if __name__ == "__main__":
    main()
