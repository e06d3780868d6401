"""Property 2 of the reliability battery: a gateway SIGKILLed during sustained ingest loses no
acknowledged event, and stores no event without its jobs (the event and its jobs are written
in one transaction before the ``202``). The client records every ``202``; after the last
restart each acknowledged event must be in the store with both of its jobs. SQLite and
PostgreSQL. Prints the events acknowledged, the kills, and the events stored without an answer
(in flight at a kill: stored, never acknowledged, which the promise allows)."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from core.testing.processes import Deployment
from hookspecs import Page, WhereEvent
from tests.chaos_kit import INGEST_APP, Ingest, figures, jobs_of, open_store, store_url  # noqa: F401 - fixtures

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]

#: SIGKILL / restart cycles, and how many posts each cycle sends before its kill.
KILLS, POSTS_PER_CYCLE = 5, 40
async def test_a_sigkilled_gateway_loses_no_acknowledged_event_and_stores_none_without_its_jobs(
    tmp_path: Path, store_url: str, figures  # noqa: F811 - the fixtures
) -> None:
    with Deployment(tmp_path, INGEST_APP, store=store_url, settings={"supervisor": "", "wanderer": ""}) as deploy, \
            Ingest() as ingest:
        for cycle in range(KILLS + 1):
            gateway = deploy.start("gateway")
            ingest.url = deploy.url
            deploy.wait_until(ingest.more(POSTS_PER_CYCLE), f"{POSTS_PER_CYCLE} more 202s", 60)
            if cycle == KILLS:
                ingest.url = ""
                break
            gateway.process.send_signal(signal.SIGKILL)  # mid-stream: requests are in flight
            ingest.url = ""
            gateway.process.wait(timeout=30)
            deploy.processes.remove(gateway)
    acknowledged = set(ingest.acknowledged)
    assert len(acknowledged) == len(ingest.acknowledged), "one event id acknowledged twice"
    store = await open_store(store_url)
    try:
        events = {event.id for event in await store.find_events(WhereEvent(page=Page(limit=1_000_000)))}
        jobs = Counter(job.event_id for job in await jobs_of(store))
    finally:
        await store.close()
    lost = acknowledged - events
    assert not lost, f"{len(lost)} acknowledged events are not in the store: {sorted(lost)[:5]}"
    without = {event: jobs[event] for event in events if jobs[event] != 2}
    assert not without, f"{len(without)} events stored without their two jobs: {list(without.items())[:5]}"
    figures(f"{len(acknowledged)} events acknowledged over {KILLS} SIGKILLs, 0 lost, "
            f"{len(events - acknowledged)} stored unanswered (in flight at a kill), 0 without their jobs")
