"""Property 2 of the reliability battery: a gateway SIGKILLed during sustained ingest loses no
acknowledged event, and stores no event without its jobs (the event and its jobs are written
in one transaction before the ``202``). The client records every ``202``; after the last
restart each acknowledged event must be in the store with both of its jobs. SQLite and
PostgreSQL. Prints the events acknowledged, the kills, and the events stored without an answer
(in flight at a kill: stored, never acknowledged, which the promise allows)."""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from core.testing.processes import Deployment
from hookspecs import Page, WhereEvent
from tests.chaos_kit import INGEST_APP, figures, jobs_of, open_store, store_url  # noqa: F401 - fixtures

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]

#: SIGKILL / restart cycles, and how many posts each cycle sends before its kill.
KILLS, POSTS_PER_CYCLE = 5, 40
#: Client threads posting at once.
CLIENTS = 4


class Ingest:
    """Clients posting to the gateway at ``url`` until told to stop, recording every ``202``."""

    def __init__(self) -> None:
        self.url = ""
        self.acknowledged: list[str] = []
        self.sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self) -> Ingest:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def more(self, count: int) -> Callable[[], bool]:
        """A condition: ``count`` more events acknowledged than now."""
        target = len(self.acknowledged) + count
        return lambda: len(self.acknowledged) >= target

    def _post(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                url = self.url
                if not url:
                    self._stop.wait(0.01)
                    continue
                with self._lock:
                    self.sent += 1
                    n = self.sent
                try:
                    answer = client.post(f"{url}/webhooks/orders", json={"data": {"n": n}})
                except httpx.HTTPError:
                    continue  # the gateway died under the request: not acknowledged
                if answer.status_code == 202:
                    with self._lock:
                        self.acknowledged.append(answer.json()["event_ids"][0])


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
