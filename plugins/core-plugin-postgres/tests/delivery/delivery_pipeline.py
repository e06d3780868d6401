"""The pipeline run by the delivery-controls tests: a concurrency-limited action and an ordered one.

``capped`` (realtime, ``concurrency = 2``) holds each load 0.1 s and appends ``job pid enter exit``
lines to ``$DELIVERY_LOG_DIR/<pid>.log``, so the test can count the loads in flight at any time.
``ordered`` (``ordering_key = "data.key"``, 2 retries) appends ``job key n attempt pid time`` lines
and fails every attempt of the job ``n = 0`` of the key ``"bad"``, which is then discarded.
``terminal`` answers every load with a :class:`~hookspecs.Discard` and an ``on_discarded``
follow-up, ``alert``, which logs ``job parent pid``. The gateway's ``POST /capped`` makes
``capped`` jobs (published on the broker when one is configured).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from hookspecs import (
    Action,
    Destination,
    Discard,
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

LOG = Path(os.environ.get("DELIVERY_LOG_DIR", ".")) / f"{os.getpid()}.log"


class Capped(Action):
    name = "capped"
    schedule = Schedule(realtime=True, interval="@every 1s")
    concurrency = 2

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        enter = time.time()
        await asyncio.sleep(0.1)
        leave = time.time()
        with LOG.open("a") as out:
            out.writelines(f"capped {job.id} {os.getpid()} {enter:.6f} {leave:.6f}\n" for job in queue.jobs)
        return None


class Ordered(Action):
    name = "ordered"
    schedule = Schedule(realtime=True, interval="@every 1s", max_retries=2)
    ordering_key = "data.key"

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        now, failing = time.time(), []
        with LOG.open("a") as out:
            for job in queue.jobs:
                out.write(f"ordered {job.id} {job.data['key']} {job.data['n']} {job.attempt} {os.getpid()} {now:.6f}\n")
                if job.data == {"key": "bad", "n": 0}:
                    failing.append(job.id)
        passing = [job.id for job in queue.jobs if job.id not in failing]
        return [Then(jobs=passing)] * bool(passing) + [Then(jobs=failing, error="HTTP 503")] * bool(failing)


class Terminal(Action):
    name = "terminal"
    schedule = Schedule(interval="@every 1s", max_retries=72)

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        return Then(error=Discard("HTTP 404 from the sink"), on_discarded=["alert"])


class Alert(Action):
    name = "alert"
    schedule = Schedule(interval="@every 1s")

    async def load(self, toolkit: Toolkit, queue: Queue) -> LoadResult:
        with LOG.open("a") as out:
            out.writelines(f"alert {job.id} {job.parent_job_id} {os.getpid()}\n" for job in queue.jobs)
        return None


@hookimpl
def core_register_destinations() -> list[Destination]:
    return [Destination("sink", actions=[Capped(), Ordered(), Terminal(), Alert()])]


@hookimpl
def core_register_sources() -> list[Source]:
    return [Source("shop", triggers=[HttpTrigger("capped", "/capped")])]


@hookimpl
def core_register_flows() -> list[Flow]:
    return [Flow("capped", source="shop", actions=["sink.capped"])]
