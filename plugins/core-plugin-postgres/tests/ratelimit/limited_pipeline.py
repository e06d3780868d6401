"""The pipeline run by the rate-limit test: one realtime action limited to ``10/s`` (burst 2).

Every load appends ``job_id pid time`` lines to ``$RATE_LOG_DIR/<pid>.log``, one per job, so
the test can measure the rate the schedulers together delivered at.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from hookspecs import Action, Destination, Flow, HttpTrigger, LoadResult, Queue, Schedule, Source, Toolkit, hookimpl

LOG = Path(os.environ.get("RATE_LOG_DIR", ".")) / f"{os.getpid()}.log"


class Limited(Action):
    name = "limited"
    schedule = Schedule(realtime=True, interval="@every 1s")
    rate_limit = "10/s"
    rate_burst = 2

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        now = time.time()
        with LOG.open("a") as out:
            out.writelines(f"{job.id} {os.getpid()} {now:.6f}\n" for job in queue.jobs)
        return None


@hookimpl
def core_register_sources() -> list[Source]:
    return [Source("shop", triggers=[HttpTrigger("orders", "/orders")])]


@hookimpl
def core_register_destinations() -> list[Destination]:
    return [Destination("sink", actions=[Limited()])]


@hookimpl
def core_register_flows() -> list[Flow]:
    return [Flow("orders", source="shop", actions=["sink.limited"])]
