"""Metrics, traces and logs in one process: redaction, JSON lines, the backlog from the store's
summary, tracing off leaves no trace context anywhere, the docs' alert rules and dashboard."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from core.config import load_settings
from core.gateway import Gateway
from core.observability import logs, metrics, tracing
from core.ready_jobs import encode
from core.runtime import Runtime
from core.testing import MemoryStore, make_event, make_job
from hookspecs import Queue, Status

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"

APP = """
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

class Push(Action):
    name = "push"
    schedule = Schedule(realtime=True)

    async def load(self, toolkit, queue):
        return None

@hookimpl
def core_register_sources():
    return [Source("shop", [HttpTrigger("orders", "/webhooks/orders")])]

@hookimpl
def core_register_destinations():
    return [Destination("crm", [Push()])]

@hookimpl
def core_register_flows():
    return [Flow("orders", source="shop", actions=["crm.push"])]
"""


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.install(None)


# -- logs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "secret"), [
    ("could not open postgresql://app:hunter2hunter@db/pipeline", "hunter2hunter"),
    ("headers {'authorization': 'Bearer eyJhbGciOi.abc'}", "eyJhbGciOi"),
    ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("GET /hook?token=tok-12345&page=2", "tok-12345"),
    ("password=p4ssw0rd and secret: s3cr3t-v4lue", "p4ssw0rd"),
    ('{"api_key": "k-9876543", "n": 1}', "k-9876543"),
    ("signed with whsec_configured_1", "whsec_configured_1"),
])
def test_the_formatter_redacts_secrets(line: str, secret: str) -> None:
    redact = logs.Redactor(["whsec_configured_1"])
    assert secret not in redact(line)
    assert logs.MASK in redact(line)


def test_plain_urls_and_text_are_left_alone() -> None:
    redact = logs.Redactor()
    for line in ("nats://127.0.0.1:4222 connected", "http://127.0.0.1:9090/webhooks/orders 202", "3 jobs of crm.push"):
        assert redact(line) == line


def test_the_configuration_s_secrets_are_collected() -> None:
    found = logs.secrets_of(
        {"store": "postgresql://app:pw-in-url@db/x", "pubsub": "nats://127.0.0.1:4222"},
        {"crm": {"api_token": "opt-token", "region": "eu"}, "hook": {"signing_secret": "whsec-1"}},
    )
    assert {"pw-in-url", "opt-token", "whsec-1"} <= set(found)
    assert "eu" not in found


def test_json_lines_carry_the_data_path_fields_and_the_trace_id(exporter: InMemorySpanExporter) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter(logs.Redactor(["canary-1234"])))
    logger = logging.getLogger("core.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        token = logs.CURRENT.set({"destination": "crm", "action": "push", "attempt": 2})
        with tracing.tracer().start_as_current_span("load crm.push") as span:
            logger.warning("load failed with key canary-1234", extra={"job_id": "j1", "event_id": "e1"})
        logs.CURRENT.reset(token)
        try:
            raise ValueError("token=canary-in-traceback")
        except ValueError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "warning" and first["message"] == "load failed with key ***"
    assert (first["destination"], first["action"], first["attempt"], first["job_id"], first["event_id"]) == (
        "crm", "push", 2, "j1", "e1")
    assert first["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert "destination" not in second and "canary-in-traceback" not in second["error"]


def test_log_keys_are_validated() -> None:
    assert load_settings(environ={"CORE_LOG_FORMAT": "JSON", "CORE_LOG_LEVEL": "debug"})["log.format"] == "json"
    with pytest.raises(Exception, match=r"log\.format"):
        load_settings(environ={"CORE_LOG_FORMAT": "xml"})


# -- metrics ----------------------------------------------------------------------------------


async def test_the_backlog_comes_from_the_store_summary() -> None:
    store = MemoryStore("memory://backlog")
    await store.open()
    try:
        event = make_event(actions=[("crm", "identify"), ("crm", "identify")])
        await store.insert_queue(Queue(events=[event]))
        counts = await store.backlog()
        job = event.jobs[0]
        assert counts == {(job.destination, job.action, Status.ACKNOWLEDGED.value): 2}
        collector = metrics._Backlog()
        await collector.refresh(store, now=100.0)
        [family] = collector.collect()
        assert [(s.labels["status"], s.value) for s in family.samples] == [("acknowledged", 2)]
    finally:
        await store.close()


async def test_the_sqlite_store_counts_its_backlog(tmp_path: Path) -> None:
    from core.builtin.sqlite.store import SQLiteStore

    store = SQLiteStore(f"sqlite:///{tmp_path}/s.db")
    await store.open()
    try:
        event = make_event(actions=[("crm", "identify")] * 3)
        await store.insert_queue(Queue(events=[event]))
        job = event.jobs[0]
        assert await store.backlog() == {(job.destination, job.action, "acknowledged"): 3}
    finally:
        await store.close()


def test_label_children_are_no_ops_when_metrics_are_off() -> None:
    metrics.enable(False)
    try:
        child = metrics.child(metrics.EVENTS_INGESTED, "s", "t", "stored")
        child.inc(5)
    finally:
        metrics.enable(True)
    assert metrics.EVENTS_INGESTED.labels("s", "t", "stored")._value.get() == 0


def test_several_processes_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    code = ("from core.observability import metrics; "
            "metrics.child(metrics.EVENTS_INGESTED, 'mp', 'hook', 'stored').inc(3)")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    render = "from core.observability import metrics; print(metrics.render().decode())"
    text = subprocess.run([sys.executable, "-c", render], env=env, check=True, timeout=60,
                          capture_output=True, text=True).stdout
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.labels.get("source") == "mp"}
    assert samples["core_events_ingested_total"] == 6


async def _gateway(tmp_path: Path, **overrides: object) -> tuple[Runtime, Gateway]:
    (tmp_path / "app.py").write_text(APP)
    settings = load_settings(cwd=tmp_path, environ={}, overrides={
        "app": str(tmp_path / "app.py"), "store": "memory://", "wanderer": "", "gateway.port": 0, **overrides})
    runtime = await Runtime.open(settings, services=["gateway"], no_plugins=True)
    gateway = Gateway(runtime)
    await gateway.start()
    return runtime, gateway


async def test_metrics_off_serves_no_metrics_route(tmp_path: Path) -> None:
    runtime, gateway = await _gateway(tmp_path, **{"metrics.enabled": False})
    try:
        async with httpx.AsyncClient(base_url=gateway.url) as client:
            assert (await client.post("/webhooks/orders", json={})).status_code == 202
            assert (await client.get("/metrics")).status_code == 404
    finally:
        await gateway.stop()
        await runtime.close()
        metrics.enable(True)


# -- traces -----------------------------------------------------------------------------------


async def test_with_tracing_off_no_trace_context_is_stored_or_sent(tmp_path: Path) -> None:
    assert not tracing.refresh()  # the API's default provider: off
    runtime, gateway = await _gateway(tmp_path)
    try:
        async with httpx.AsyncClient(base_url=gateway.url) as client:
            answer = await client.post("/webhooks/orders", json={"context": {"ip": "203.0.113.9"}},
                                       headers={"traceparent": PARENT})
        event = await runtime.store.get_event(answer.json()["event_id"])
        assert event is not None and event.context == {"ip": "203.0.113.9"}
    finally:
        await gateway.stop()
        await runtime.close()
    [message] = encode([make_job(make_event())], tracing.carrier() if tracing.ON else None)
    assert "traceparent" not in message.attributes


async def test_with_tracing_on_the_event_keeps_the_request_s_trace(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    runtime, gateway = await _gateway(tmp_path)
    try:
        async with httpx.AsyncClient(base_url=gateway.url) as client:
            answer = await client.post("/webhooks/orders", json={}, headers={"traceparent": PARENT})
        event = await runtime.store.get_event(answer.json()["event_id"])
    finally:
        await gateway.stop()
        await runtime.close()
    assert event is not None
    stored = tracing.event_carrier(event.context)
    assert stored is not None and stored["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    [request] = [s for s in exporter.get_finished_spans() if s.name == "POST /webhooks/orders"]
    assert stored["traceparent"].split("-")[2] == f"{request.context.span_id:016x}"
    assert request.attributes is not None and request.attributes["http.response.status_code"] == 202


# -- the docs' examples -----------------------------------------------------------------------

METRIC_NAMES = {
    "core_events_ingested_total", "core_gateway_request_duration_seconds", "core_jobs_transitioned_total",
    "core_load_duration_seconds", "core_jobs_backlog", "core_realtime_publish_failures_total",
    "core_claim_recoveries_total", "core_broker_reconnects_total", "core_leases_held",
}


def _referenced(expr: str) -> set[str]:
    import re

    names = set(re.findall(r"\bcore_[a-z_]+", expr))
    return {re.sub(r"_(bucket|count|sum)$", "", name) for name in names}


def test_the_alert_rules_are_valid_and_use_our_metrics() -> None:
    path = EXAMPLES / "prometheus-alerts.yml"
    promtool = shutil.which("promtool")
    if promtool:
        done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    yaml = pytest.importorskip("yaml")
    rules = [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]
    assert len(rules) >= 10
    for rule in rules:
        assert rule["alert"].startswith("Core") and rule["annotations"]["summary"]
        assert _referenced(rule["expr"]) and _referenced(rule["expr"]) <= METRIC_NAMES, rule["alert"]


def test_the_dashboard_charts_every_metric() -> None:
    dashboard = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in _referenced(target["expr"])}
    assert used == METRIC_NAMES


def test_every_metric_is_registered_with_its_conventional_name() -> None:
    text = metrics.render().decode()
    families = {f.name for f in text_string_to_metric_families(text)}
    for name in METRIC_NAMES:
        assert name.removesuffix("_total") in families, name
