"""One trace from the HTTP request to the load, through NATS: a gateway and a scheduler (two
runtimes in this process, sharing a SQLite file, so one in-memory span exporter sees both)
carry the trace context in the event and in the realtime message's headers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from core.config import load_settings
from core.gateway import Gateway
from core.observability import tracing
from core.runtime import Runtime
from core.scheduler import run_scheduler
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

APP = """
from pathlib import Path
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, Then, hookimpl

DONE = Path(__file__).parent / "notified.txt"

class Push(Action):
    name = "push"
    schedule = Schedule(realtime=True)

    async def load(self, toolkit, queue):
        return Then(on_succeeded=["notify"])

class Notify(Action):
    name = "notify"
    schedule = Schedule(realtime=True)

    async def load(self, toolkit, queue):
        with DONE.open("a") as out:
            out.writelines(f"{job.event_id}\\n" for job in queue.jobs)

@hookimpl
def core_register_sources():
    return [Source("shop", [HttpTrigger("orders", "/webhooks/orders")])]

@hookimpl
def core_register_destinations():
    return [Destination("crm", [Push(), Notify()])]

@hookimpl
def core_register_flows():
    return [Flow("orders", source="shop", actions=["crm.push"])]
"""

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert tracing.install(provider)
    yield exporter
    tracing.install(None)
    provider.shutdown()


async def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"waited {timeout}s for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.timeout(60)
async def test_one_trace_goes_from_the_request_through_nats_to_the_loads(
    tmp_path: Path, nats_url: str, exporter: InMemorySpanExporter
) -> None:
    (tmp_path / "app.py").write_text(APP)
    overrides = {"app": str(tmp_path / "app.py"), "store": f"sqlite:///{tmp_path}/core.db", "pubsub": nats_url,
                 "wanderer": "", "supervisor": "", "gateway.port": 0, "scheduler.poll_seconds": 30.0}
    settings = load_settings(cwd=tmp_path, environ={}, overrides=overrides)
    scheduler_runtime = await Runtime.open(settings, services=["scheduler"])
    gateway_runtime = await Runtime.open(settings, services=["gateway"])
    stop = asyncio.Event()
    ready = asyncio.Event()
    scheduler = asyncio.create_task(run_scheduler(scheduler_runtime, stop, on_ready=lambda on: ready.set()))
    gateway = Gateway(gateway_runtime)
    try:
        await asyncio.wait_for(ready.wait(), 20)
        await asyncio.sleep(0.5)  # the realtime consumer joins its group
        await gateway.start()
        parent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{gateway.url}/webhooks/orders", json={"data": {"id": 1}},
                                       headers={"traceparent": parent})
        assert answer.status_code == 202
        event_id = answer.json()["event_id"]
        notified = tmp_path / "notified.txt"
        await _wait(lambda: notified.exists() and event_id in notified.read_text(), "the follow-up load")
        await _wait(lambda: sum(s.name.startswith("load ") for s in exporter.get_finished_spans()) >= 2,
                    "both load spans to end")
    finally:
        stop.set()
        await gateway.stop()
        await scheduler
        await gateway_runtime.close()
        await scheduler_runtime.close()

    spans: list[ReadableSpan] = list(exporter.get_finished_spans())
    by_name = {span.name: span for span in spans}
    request = by_name["POST /webhooks/orders"]
    assert request.kind is SpanKind.SERVER
    assert request.parent is not None and f"{request.parent.span_id:016x}" == "00f067aa0ba902b7"
    commit, publish = by_name["core.store commit"], by_name["core.jobs publish"]
    push, notify = by_name["load crm.push"], by_name["load crm.notify"]
    # One trace: the caller's, continued by every span from the request to the follow-up's load.
    for span in (request, commit, publish, push, notify):
        assert f"{span.context.trace_id:032x}" == TRACE_ID, span.name
    assert commit.parent is not None and commit.parent.span_id == request.context.span_id
    assert publish.parent is not None and publish.parent.span_id == request.context.span_id
    assert push.parent is not None and push.parent.span_id == publish.context.span_id  # through NATS headers
    assert [link.context.span_id for link in push.links] == [request.context.span_id]  # the job's event span
    notify_publish = [s for s in spans if s.name == "core.jobs publish" and s is not publish]
    assert notify.parent is not None and notify.parent.span_id == push.context.span_id  # published in the load
    assert not notify_publish  # the follow-up is published from inside the first load's span
    assert [link.context.span_id for link in notify.links] == [request.context.span_id]
