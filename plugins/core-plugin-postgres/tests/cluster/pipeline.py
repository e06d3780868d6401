"""The pipeline run by the cluster test: a webhook, a CDC source on the table ``watched`` of
``$CLUSTER_CDC_URL`` (when set), a realtime and a scheduled action.

Every load appends ``job_id pid start end`` lines to ``$CLUSTER_LOG_DIR/<pid>.log`` so the test
can check that no job ran twice at the same time. The scheduled action fails one batch in
five, so retries happen across schedulers too.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

from hookspecs import (
    Action,
    Destination,
    Flow,
    HttpTrigger,
    LoadResult,
    Queue,
    Schedule,
    Source,
    Then,
    Toolkit,
    hookimpl,
)

from core_plugin_postgres import postgres_cdc_source

LOG = Path(os.environ.get("CLUSTER_LOG_DIR", ".")) / f"{os.getpid()}.log"
CDC_URL = os.environ.get("CLUSTER_CDC_URL", "")


async def record(queue: Queue) -> None:
    start = time.time()
    await asyncio.sleep(0.01)  # a load takes some time: overlaps would show
    end = time.time()
    with LOG.open("a") as out:
        out.writelines(f"{job.id} {os.getpid()} {start:.6f} {end:.6f}\n" for job in queue.jobs)


class Realtime(Action):
    name = "realtime"
    schedule = Schedule(realtime=True, interval="@every 1s")

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        await record(queue)
        return None


class Scheduled(Action):
    name = "scheduled"
    schedule = Schedule(interval="@every 1s", max_retries=50)

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        await record(queue)
        if random.random() < 0.2:
            return Then(error="the sink refused this batch")
        return None


@hookimpl
def core_register_sources() -> list[Source]:
    sources = [Source("shop", triggers=[HttpTrigger("orders", "/orders")])]
    if CDC_URL:
        sources.append(postgres_cdc_source("shop_db", CDC_URL, ["watched"], poll_interval=0.5))
    return sources


@hookimpl
def core_register_destinations() -> list[Destination]:
    return [Destination("sink", actions=[Realtime(), Scheduled()])]


@hookimpl
def core_register_flows() -> list[Flow]:
    flows = [Flow("orders", source="shop", actions=["sink.realtime", "sink.scheduled"])]
    if CDC_URL:
        flows.append(Flow("changes", source="shop_db", actions=["sink.realtime"]))
    return flows
