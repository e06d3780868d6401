"""Real processes: a lone scheduler and a gateway, both scraped at ``/metrics`` with the
Prometheus text parser while events flow; their JSON logs at DEBUG hold no secret."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.testing import Deployment

pytestmark = pytest.mark.slow

CANARIES = ("canary-option-7f3a", "canary-urlpw-19bd", "canary-bearer-c0de", "canary-query-e51f")

APP = """
import logging
from pathlib import Path
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

LOADED = Path(__file__).parent / "loaded.txt"

class Record(Action):
    name = "record"
    schedule = Schedule(realtime=True)

    async def load(self, toolkit, queue):
        toolkit.logger.debug("calling https://crm:canary-urlpw-19bd@crm.example/v1?token=canary-query-e51f")
        toolkit.logger.debug("headers %s", {"Authorization": "Bearer canary-bearer-c0de"})
        toolkit.logger.info("using key %s", toolkit.options.get("api_token"))
        with LOADED.open("a") as out:
            out.writelines(f"{job.event_id}\\n" for job in queue.jobs)

@hookimpl
def core_register_sources():
    return [Source("shop", [HttpTrigger("orders", "/webhooks/orders")])]

@hookimpl
def core_register_destinations():
    return [Destination("sink", [Record()])]

@hookimpl
def core_register_flows():
    return [Flow("orders", source="shop", actions=["sink.record"])]
"""


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``url``/metrics, by name and labels, through the Prometheus text parser."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.timeout(180)
def test_both_metrics_endpoints_count_events_and_jobs_as_they_flow(tmp_path: Path) -> None:
    settings = {
        "scheduler": {"poll_seconds": 0.2},
        "log": {"level": "debug", "format": "json"},
        "options.sink": {"api_token": CANARIES[0]},
    }
    with Deployment(tmp_path, APP, settings=settings) as deploy:
        deploy.start("scheduler")
        assert deploy.scheduler_url.startswith("http://127.0.0.1:")
        deploy.wait_until(lambda: httpx.get(f"{deploy.scheduler_url}/_ready").status_code == 200,
                          "the scheduler to be ready")
        assert httpx.get(f"{deploy.scheduler_url}/_health").json()["status"] == "ok"
        deploy.start("gateway")
        stored = ("core_events_ingested_total", {"source": "shop", "trigger": "orders", "outcome": "stored"})
        succeeded = ("core_jobs_transitioned_total", {"destination": "sink", "action": "record", "state": "succeeded"})
        assert value(scrape(deploy.url), stored[0], **stored[1]) == 0

        first = deploy.post("/webhooks/orders", {"data": {"n": 1}}, {"events": [{"data": {"n": 2}}, {"data": {}}]})
        deploy.wait_until(lambda: len(deploy.loaded()) == 3, "the first 3 jobs to be loaded")
        deploy.wait_until(lambda: value(scrape(deploy.scheduler_url), succeeded[0], **succeeded[1]) == 3,
                          "the scheduler to count 3 succeeded jobs")
        gateway = scrape(deploy.url)
        assert value(gateway, stored[0], **stored[1]) == 3
        assert value(gateway, "core_gateway_request_duration_seconds_count",
                     source="shop", trigger="orders", code="202") == 2

        bad = httpx.post(f"{deploy.url}/webhooks/orders", content=b"{not json")
        assert bad.status_code == 400
        deploy.post("/webhooks/orders", *({"data": {"n": n}} for n in range(4)))
        deploy.wait_until(lambda: len(deploy.loaded()) == 7, "the next 4 jobs to be loaded")
        deploy.wait_until(lambda: value(scrape(deploy.scheduler_url), succeeded[0], **succeeded[1]) == 7,
                          "the scheduler to count 7 succeeded jobs")
        gateway, scheduler = scrape(deploy.url), scrape(deploy.scheduler_url)
        assert value(gateway, stored[0], **stored[1]) == 7
        assert value(gateway, "core_events_ingested_total", source="shop", trigger="orders", outcome="rejected") == 1
        assert value(scheduler, "core_jobs_transitioned_total",
                     destination="sink", action="record", state="executing") == 7
        assert value(scheduler, "core_load_duration_seconds_count", destination="sink", action="record") >= 1
        assert ("core_jobs_backlog", (("action", "record"), ("destination", "sink"), ("status", "succeeded"))) \
            not in scheduler  # finished jobs are not backlog
        assert first
    # The canary: every line of both processes at DEBUG, JSON, none with a secret.
    lines = [line for name in ("scheduler.log", "gateway.log") for line in (tmp_path / name).read_text().splitlines()]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) > 20
    assert any(r["message"].startswith("calling https://crm:***@crm.example") for r in records)
    assert any(r.get("destination") == "sink" and r.get("action") == "record" and "attempt" in r for r in records)
    for line in lines:
        for canary in CANARIES:
            assert canary not in line, line
