"""Benchmark of what metrics and tracing cost: ingest and delivery throughput in one run, with
metrics off and tracing off (the baseline), metrics on and tracing off, and both on.

    python bench/observability.py [--seconds 4] [--jobs 20000] [--rounds 2]

Ingest: single-event requests through the gateway's real ASGI application (called in this
process, 64 at a time, no sockets: what is measured is the gateway's own work), built-in SQLite
store, one realtime action (so the publisher runs, on the in-memory broker). Delivery: ``--jobs``
jobs ingested, then claimed and loaded by the scheduler's loop for their action, in batches of
500. "tracing on" is the OpenTelemetry SDK with a batch span processor and an exporter that
drops the spans (the SDK's own cost, without a collector's network). Modes alternate round by
round so that a busy shared machine weighs on each alike; the best round of each is printed
beside the baseline. Figures only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from core.config import load_settings
from core.gateway.app import build_app
from core.gateway.ingest import Ingestor
from core.observability import tracing
from core.runtime import Runtime
from core.scheduler.loop import ActionLoop
from core.scheduler.runner import Runner

APP = """
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

class Push(Action):
    name = "push"
    schedule = Schedule(realtime=True)

    async def load(self, toolkit, queue):
        return None

class Export(Action):
    name = "export"
    schedule = Schedule(interval="@every 1h")

    async def load(self, toolkit, queue):
        return None

@hookimpl
def core_register_sources():
    return [Source("bench", [HttpTrigger("ingest", "/ingest"), HttpTrigger("backlog", "/backlog")])]

@hookimpl
def core_register_destinations():
    return [Destination("crm", [Push()]), Destination("warehouse", [Export()])]

@hookimpl
def core_register_flows():
    return [Flow("live", source="bench", trigger="ingest", actions=["crm.push"]),
            Flow("batch", source="bench", trigger="backlog", actions=["warehouse.export"])]
"""

BODY = orjson.dumps({"name": "order.created", "context": {"ip": "127.0.0.1"},
                     "data": {"order": 42, "total": 99.5, "items": [{"sku": "A-1", "qty": 2}]}})
MODES = ("off", "metrics", "metrics+tracing")


class Dropping(SpanExporter):
    """Takes spans and drops them: the SDK's cost without an exporter's."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


async def _runtime(directory: Path, mode: str) -> Runtime:
    settings = load_settings(cwd=directory, environ={}, overrides={
        "app": str(directory.parent / "app.py"), "store": f"sqlite:///{directory}/{mode}.db", "wanderer": "",
        "supervisor": "", "metrics.enabled": mode != "off", "scheduler.batch_size": 500,
    })
    return await Runtime.open(settings, services=["gateway", "scheduler"], no_plugins=True)


async def _post(app: Any, path: str) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "method": "POST", "path": path, "root_path": "", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]}
    await app(scope, receive, send)
    return status


async def ingest(runtime: Runtime, seconds: float, concurrency: int = 64) -> tuple[float, float]:
    """Single-event requests for ``seconds``: (events/s, process CPU µs per event)."""
    ingestor = Ingestor(runtime)
    app = build_app(runtime, ingestor)
    done = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            assert await _post(app, "/ingest") == 202
            done += 1

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await ingestor.close()
    return done / wall, cpu / done * 1e6


async def deliver(runtime: Runtime, jobs: int) -> tuple[float, float]:
    """``jobs`` jobs ingested, then loaded by the action's loop: (jobs/s, CPU µs per job)."""
    ingestor = Ingestor(runtime)
    app = build_app(runtime, ingestor)
    for start in range(0, jobs, 500):
        await asyncio.gather(*(_post(app, "/backlog") for _ in range(min(500, jobs - start))))
    await ingestor.close()
    destination, action = runtime.pipeline.action("warehouse.export")
    loop = ActionLoop(runtime, Runner(runtime, load_timeout=60), destination, action, asyncio.Event(),
                      batch_size=500, lease_seconds=300, poll_seconds=1)
    wall, cpu = time.perf_counter(), time.process_time()
    loaded = await loop.tick(datetime.now(UTC))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert loaded == jobs, (loaded, jobs)
    return loaded / wall, cpu / loaded * 1e6


async def one(directory: Path, mode: str, seconds: float, jobs: int, round_: int) -> dict[str, float]:
    provider: TracerProvider | None = None
    exporter = Dropping()
    if mode == "metrics+tracing":
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    tracing.install(provider)
    runtime = await _runtime(directory / f"r{round_}", mode)
    try:
        rate, cpu = await ingest(runtime, seconds)
        jobs_rate, jobs_cpu = await deliver(runtime, jobs)
    finally:
        await runtime.close()
        tracing.install(None)
        if provider is not None:
            provider.shutdown()
    return {"ingest": rate, "ingest_cpu": cpu, "deliver": jobs_rate, "deliver_cpu": jobs_cpu, "spans": exporter.spans}


async def main_async(seconds: float, jobs: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="core-bench-obs-") as tmp:
        directory = Path(tmp)
        (directory / "app.py").write_text(APP)
        results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for round_ in range(rounds):
            (directory / f"r{round_}").mkdir()
            for mode in MODES:
                result = await one(directory, mode, seconds, jobs, round_)
                results[mode].append(result)
                print(f"round {round_ + 1} {mode:16} ingest {result['ingest']:8,.0f} events/s "
                      f"({result['ingest_cpu']:5.0f} µs CPU/event)  deliver {result['deliver']:8,.0f} jobs/s "
                      f"({result['deliver_cpu']:5.1f} µs CPU/job)  spans {result['spans']:,.0f}", flush=True)
    base_ingest = max(r["ingest"] for r in results["off"])
    base_deliver = max(r["deliver"] for r in results["off"])
    print(f"\nbest of {rounds} rounds; baseline = metrics off, tracing off, same run")
    print(f"{'mode':16} {'ingest events/s':>16} {'vs baseline':>11} {'CPU µs/event':>13} "
          f"{'deliver jobs/s':>15} {'vs baseline':>11} {'CPU µs/job':>11}")
    for mode in MODES:
        ingest_best = max(results[mode], key=lambda r: r["ingest"])
        deliver_best = max(results[mode], key=lambda r: r["deliver"])
        print(f"{mode:16} {ingest_best['ingest']:16,.0f} {ingest_best['ingest'] / base_ingest:10.0%} "
              f"{ingest_best['ingest_cpu']:13.0f} {deliver_best['deliver']:15,.0f} "
              f"{deliver_best['deliver'] / base_deliver:10.0%} {deliver_best['deliver_cpu']:11.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of ingest per mode and round")
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs delivered per mode and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three modes")
    args = parser.parse_args()
    asyncio.run(main_async(args.seconds, args.jobs, args.rounds))


if __name__ == "__main__":
    main()
