"""Realtime delivery through a pub/sub broker, gateway and scheduler as separate processes.

    python bench/realtime_broker.py PUBSUB_URL [--rate 1000] [--seconds 10] [--connections 32]

The broker scripts (``bench/realtime_nats.py``, ``bench/realtime_rabbitmq.py``) call this with
a fresh prefix or exchange and clean up after it. It writes a tiny project in a temporary
directory (one HTTP trigger, one realtime action whose ``load`` notes when each job reached
it), starts ``core start scheduler`` and ``core start gateway`` (``core.testing.Deployment``)
on the built-in SQLite store (or ``--store``, e.g. an empty PostgreSQL database) and the broker
URL, with the realtime poll
set to once an hour so that every job comes through the broker. A SEPARATE load-generating
process posts single-event requests at a steady ``--rate`` on keep-alive connections and
notes when each ``202`` arrived. It prints the rate reached, events/s loaded, and the latency
from the ``202`` to the ``load`` (p50, p90, p95, p99, max), plus how many of the acknowledged
events reached ``load`` at all.
Figures only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from _harness import read_answer

from core.testing.processes import Deployment

APP = """
import time
from pathlib import Path
from urllib.parse import urlsplit

from core.testing.processes import Deployment
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

LOADS = (Path(__file__).parent / "loads.txt").open("a", buffering=1 << 16)

class Record(Action):
    name = "record"
    schedule = Schedule(realtime=True)

    async def load(self, toolkit, queue):
        now = time.time()
        LOADS.write("".join(f"{job.event_id} {now}\\n" for job in queue.jobs))
        LOADS.flush()

@hookimpl
def core_register_sources():
    return [Source("bench", [HttpTrigger("ingest", "/ingest")])]

@hookimpl
def core_register_destinations():
    return [Destination("sink", [Record()])]

@hookimpl
def core_register_flows():
    return [Flow("all", source="bench", actions=["sink.record"])]
"""

BODY = json.dumps({"name": "order.created", "context": {"ip": "127.0.0.1"}, "data": {"order": 42}}).encode()


# -- the load generator (runs in its own process) ---------------------------------------------

async def _connection(host: str, port: int, starts: list[float], acked: list[tuple[str, float]]) -> None:
    """Send one request at each of ``starts`` (or as soon as the previous answer is in)."""
    request = (f"POST /ingest HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for start in starts:
            delay = start - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            status, body = await read_answer(reader)
            if status == 202:
                acked.extend((event_id, time.time()) for event_id in json.loads(body)["event_ids"])
    finally:
        writer.close()


async def _load(url: str, rate: float, seconds: float, connections: int) -> dict[str, object]:
    match = re.match(r"http://([^:/]+):(\d+)", url)
    assert match, url
    host, port = match.group(1), int(match.group(2))
    begin = time.time() + 0.2
    total = int(rate * seconds)
    schedule = [begin + i / rate for i in range(total)]
    acked: list[tuple[str, float]] = []
    await asyncio.gather(*(_connection(host, port, schedule[c::connections], acked) for c in range(connections)))
    return {"sent": total, "began": begin, "ended": time.time(), "acked": acked}


# -- the orchestrator --------------------------------------------------------------------------

def _loads(directory: Path) -> dict[str, float]:
    path = directory / "loads.txt"
    if not path.exists():
        return {}
    reached: dict[str, float] = {}
    for line in path.read_text().splitlines():
        event_id, _, at = line.partition(" ")
        if at:
            reached.setdefault(event_id, float(at))
    return reached


def _warm_up(url: str, directory: Path, within: float = 60.0) -> None:
    """Post one event at a time until one reaches ``load``: the broker path is ready."""
    import httpx

    deadline = time.monotonic() + within
    with httpx.Client(base_url=url, timeout=10) as client:
        while not _loads(directory):
            if time.monotonic() > deadline:
                raise SystemExit(f"no event reached load within {within:g}s; see {directory}/*.log")
            client.post("/ingest", content=BODY, headers={"content-type": "application/json"})
            time.sleep(0.2)


def _percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


def run(pubsub: str, rate: float, seconds: float, connections: int, store: str = "sqlite:///core.db") -> None:
    """Run the benchmark against ``pubsub`` (and ``store``) and print its figures."""
    settings = {"supervisor": "", "wanderer": "", "scheduler": {"poll_seconds": 3600}}
    with tempfile.TemporaryDirectory(prefix="core-bench-realtime-") as tmp:
        directory = Path(tmp)
        with Deployment(directory, APP, store=store, pubsub=pubsub, settings=settings) as deployment:
            deployment.start_apart()
            url = deployment.url
            _warm_up(url, directory)
            broker = f"{urlsplit(pubsub).scheme}://{urlsplit(pubsub).netloc.rpartition('@')[2]}"
            print(f"{broker}, store {store.split('://')[0]}: {os.cpu_count()} cores, {rate:g} events/s for "
                  f"{seconds:g}s on {connections} connections, gateway and scheduler in separate processes")
            out = subprocess.run(
                [sys.executable, __file__, "--load", url, "--rate", str(rate), "--seconds", str(seconds),
                 "--connections", str(connections)],
                check=True, capture_output=True, text=True,
            )
            result = json.loads(out.stdout)
            acked = {event_id: at for event_id, at in result["acked"]}
            deadline = time.monotonic() + 15
            while not set(acked) <= set(_loads(directory)) and time.monotonic() < deadline:
                time.sleep(0.1)
        reached = _loads(directory)
        waits = sorted((reached[i] - at) * 1000 for i, at in acked.items() if i in reached)
        span = max((reached[i] for i in acked if i in reached), default=result["ended"]) - result["began"]
        offered = result["sent"] / (result["ended"] - result["began"])
        print(f"sent {result['sent']:,} requests ({offered:,.0f}/s reached), {len(acked):,} answered 202; "
              f"{len(waits):,} reached load through the broker ({len(waits) / span:,.0f} events/s)")
        print(f"202 -> load ms: p50 {_percentile(waits, 50):.1f}  p90 {_percentile(waits, 90):.1f}  "
              f"p95 {_percentile(waits, 95):.1f}  p99 {_percentile(waits, 99):.1f}  "
              f"max {waits[-1] if waits else float('nan'):.1f}  "
              f"(negative: load began before the client read its 202: {sum(w < 0 for w in waits):,})")
        missing = len(acked) - len(waits)
        if missing:
            print(f"{missing:,} acknowledged event(s) did not reach load within 15s (the schedule would deliver them)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pubsub", nargs="?", help="the pub/sub URL, e.g. nats://127.0.0.1:4222?prefix=bench")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second offered")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to offer them")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections of the load generator")
    parser.add_argument("--store", default="sqlite:///core.db", help="the store URL (default: SQLite, temporary)")
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        print(json.dumps(asyncio.run(_load(args.load, args.rate, args.seconds, args.connections))))
        return
    if not args.pubsub:
        parser.error("the pub/sub URL is required")
    run(args.pubsub, args.rate, args.seconds, args.connections, args.store)


if __name__ == "__main__":
    main()
