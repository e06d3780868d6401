"""The quickstart pipeline: two sources, three flows, three destinations.

- ``shop``: a webhook source; ``POST /webhooks/orders`` with ``{"context": {...}, "data": {...}}``.
- ``clock``: a cron source that emits a heartbeat every 30 seconds.
- ``logger.log``: a realtime action that logs every order and heartbeat as soon as stored.
- ``warehouse.insert``: a scheduled action (every 10 s, 2 retries) that posts orders in batches
  to an HTTP endpoint which refuses each order with the probability ``failure_rate`` (default
  0.75) on every attempt, so that within a minute some orders succeed, some after retries, and
  about four in ten are ``discarded`` after their 2 retries (``core jobs list``).
- ``alerts.page``: the follow-up run for every discarded warehouse job.

The flaky endpoint is served by the gateway itself (``/demo/warehouse``, added with
``core_gateway_routes``); ``[options.warehouse] failure_rate`` sets its rate (the warehouse sends
it along with each batch, so it works with the gateway and the scheduler in two processes), and
``[options.warehouse] url`` pointed elsewhere uses a real endpoint instead.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from hookspecs import (
    Action,
    CronTrigger,
    Destination,
    Event,
    EventDraft,
    Flow,
    HttpTrigger,
    LoadResult,
    Payload,
    Queue,
    Schedule,
    Source,
    Then,
    Toolkit,
    hookimpl,
)

#: The share of orders the demo endpoint refuses on each attempt, unless
#: ``[options.warehouse] failure_rate`` says otherwise.
FAILURE_RATE = 0.75
#: The header that carries the failure rate to the demo endpoint.
RATE_HEADER = "x-demo-failure-rate"

# Sources: where events come from.


async def heartbeat(toolkit: Toolkit) -> Sequence[EventDraft]:
    """The cron trigger's extractor: one event per tick."""
    return [EventDraft(data={"at": datetime.now(UTC).isoformat()}, name="heartbeat")]


@hookimpl
def core_register_sources() -> list[Source]:
    return [
        Source("shop", triggers=[HttpTrigger("orders", "/webhooks/orders")]),
        Source("clock", triggers=[CronTrigger("tick", "@every 30s", heartbeat)]),
    ]


# Destinations: where events go.


class Log(Action):
    """Logs each job as soon as its event is stored (realtime, through the pub/sub)."""

    name = "log"
    schedule = Schedule(realtime=True)

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        for event in queue.events:
            toolkit.logger.info("%s/%s %s: %s", event.source, event.name, event.id, event.data)
        return None  # every job succeeded


class Insert(Action):
    """Posts orders in batches; the endpoint sometimes fails, and the scheduler retries."""

    name = "insert"

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def marshal(self, event: Event, toolkit: Toolkit) -> Payload | None:
        if not isinstance(event.data, dict):
            return None  # not an order: no job for this action
        return Payload(data={"order": event.data, "received_at": event.received_at.isoformat()})

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        rows = [{"job": job.id, **job.data} for job in queue.jobs]
        headers = {RATE_HEADER: str(self.warehouse.failure_rate)}
        try:
            response = await self.warehouse.client.post(self.warehouse.url, json=rows, headers=headers)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            return Then(error=f"warehouse refused the batch: {exc}", on_discarded=["alerts.page"])
        answer = response.json()
        refused = answer.get("refused", []) if isinstance(answer, dict) else []
        stored = [row["job"] for row in rows if row["job"] not in refused]
        toolkit.logger.info("stored %d order(s) in the warehouse, %d refused", len(stored), len(refused))
        return [
            Then(jobs=stored),
            *([Then(jobs=refused, error="warehouse busy, try later", on_discarded=["alerts.page"])] if refused else []),
        ]


class Warehouse(Destination):
    """Opens an HTTP client when the scheduler starts and closes it when it stops."""

    def __init__(self) -> None:
        super().__init__("warehouse", actions=[Insert(self)], schedule=Schedule(interval="@every 10s", max_retries=2))
        self.url = "http://127.0.0.1:9090/demo/warehouse"
        self.failure_rate = FAILURE_RATE
        self.client = httpx.AsyncClient(timeout=5.0)

    async def init(self, toolkit: Toolkit) -> None:
        self.url = toolkit.options.get("url", self.url)
        rate = toolkit.options.get("failure_rate", FAILURE_RATE)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValueError(f"[options.warehouse] failure_rate = {rate!r}: expected a number from 0 to 1")
        self.failure_rate = float(rate)

    async def shutdown(self, toolkit: Toolkit) -> None:
        await self.client.aclose()


class Page(Action):
    """Runs for every discarded warehouse job (a child job of it)."""

    name = "page"
    schedule = Schedule(realtime=True)

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        for job in queue.jobs:
            toolkit.logger.warning("order given up after retries (job %s): %s", job.parent_job_id, job.data)
        return None


@hookimpl
def core_register_destinations() -> list[Destination]:
    return [Destination("logger", actions=[Log()]), Warehouse(), Destination("alerts", actions=[Page()])]


# Flows: what connects them.


@hookimpl
def core_register_flows() -> list[Flow]:
    return [
        Flow("orders-to-log", source="shop", trigger="orders", actions=["logger.log"]),
        Flow("orders-to-warehouse", source="shop", trigger="orders", actions=["warehouse.insert"]),
        Flow("heartbeats", source="clock", actions=["logger.log"]),
    ]


# The flaky endpoint the warehouse posts to, served by the gateway for this demo.


@hookimpl
def core_gateway_routes() -> list[Any]:
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def warehouse(request: Request) -> JSONResponse:
        """Refuse each row with the probability the header says; answer which were refused."""
        rows = await request.json()
        rate = float(request.headers.get(RATE_HEADER, FAILURE_RATE))
        refused = [row.get("job") for row in rows if random.random() < rate]
        return JSONResponse({"stored": len(rows) - len(refused), "refused": refused})

    return [Route("/demo/warehouse", warehouse, methods=["POST"])]
