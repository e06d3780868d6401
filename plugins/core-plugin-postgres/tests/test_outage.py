"""A gateway and a scheduler as processes while PostgreSQL keeps dropping their connections.

Every backend of the database is terminated again and again while events are posted: each
request is answered ``202`` or ``503``, every event answered ``202`` is in the store, and
once the outage ends the scheduler, reconnected, delivers every stored job (those whose
outcome could not be recorded during the outage after their claim lease, by recovery).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from core.testing import Deployment
from hookspecs import Page, WhereEvent
from test_cluster import HERE, all_jobs

from core_plugin_postgres.store import PostgresStore

pytestmark = pytest.mark.slow


@pytest.fixture
def services(pg_url: str, tmp_path: Path) -> Iterator[str]:
    """A scheduler then a gateway on ``pg_url``; the gateway's URL. Both must stop cleanly."""
    settings = {
        "supervisor": pg_url, "wanderer": "",
        # Loads whose transitions could not be stored stay executing until their claim lease
        # runs out; a short lease lets recovery hand them back within the test.
        "scheduler": {"poll_seconds": 0.2, "lease_seconds": 3.0, "load_timeout": 2.0},
    }
    app = (HERE / "cluster" / "pipeline.py").read_text()
    with Deployment(tmp_path, app, store=pg_url, pubsub=pg_url, settings=settings,
                    env={"CLUSTER_LOG_DIR": str(tmp_path)}) as deployment:
        deployment.start("scheduler")
        deployment.start("gateway")
        yield deployment.url


async def test_connection_losses_give_503_never_a_lost_202(services: str, pg_url: str) -> None:
    answered: dict[int, int] = {}
    acknowledged: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client:
        admin = await asyncpg.connect(pg_url)
        outage = True

        async def kill_backends() -> None:
            while outage:
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                await asyncio.sleep(0.05)

        async def post(i: int) -> None:
            response = await client.post(f"{services}/orders", json={"data": {"n": i}})
            answered[response.status_code] = answered.get(response.status_code, 0) + 1
            if response.status_code == 202:
                acknowledged.append(response.json()["event_id"])

        killer = asyncio.create_task(kill_backends())
        try:
            for start in range(0, 600, 20):
                await asyncio.gather(*(post(i) for i in range(start, start + 20)))
        finally:
            outage = False
            await killer
            await admin.close()

    assert set(answered) <= {202, 503}, answered
    assert answered.get(503) and answered.get(202), f"the outage should show both answers: {answered}"
    store = PostgresStore(pg_url)  # opened after the outage, which would have cut it too
    await store.open()
    try:
        stored = {e.id for e in await store.find_events(WhereEvent(page=Page(limit=10_000)))}
        assert set(acknowledged) <= stored, "an event answered 202 is missing from the store"
        deadline = asyncio.get_running_loop().time() + 90
        while pending := await all_jobs(store):
            assert asyncio.get_running_loop().time() < deadline, f"{len(pending)} jobs never succeeded"
            await asyncio.sleep(0.5)
    finally:
        await store.close()
