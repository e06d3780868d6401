"""A gateway and a scheduler as processes while PostgreSQL keeps dropping their connections.

Every backend of the database is terminated again and again while events are posted: each
request is answered ``202`` or ``503``, every event answered ``202`` is in the store, and
once the outage ends the scheduler, reconnected, delivers every stored job (those whose
outcome could not be recorded during the outage after their claim lease, by recovery).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from hookspecs import Page, WhereEvent
from test_cluster import HERE, all_jobs, free_port, wait_healthy

from core_plugin_postgres.store import PostgresStore

pytestmark = pytest.mark.slow


@pytest.fixture
def services(pg_url: str, tmp_path: Path) -> Iterator[int]:
    env = {**os.environ, "CORE_STORE": pg_url, "CORE_PUBSUB": pg_url, "CORE_SUPERVISOR": pg_url,
           "CORE_WANDERER": "", "CORE_APP": str(HERE / "cluster" / "pipeline.py"),
           "CLUSTER_LOG_DIR": str(tmp_path), "CORE_SCHEDULER_POLL_SECONDS": "0.2",
           # Loads whose transitions could not be stored stay executing until their claim
           # lease runs out; a short lease lets recovery hand them back within the test.
           "CORE_SCHEDULER_LEASE_SECONDS": "3", "CORE_SCHEDULER_LOAD_TIMEOUT": "2"}
    port = free_port()
    procs = [
        subprocess.Popen([sys.executable, "-m", "core", "start", *command], env=env, cwd=tmp_path,
                         stdout=(tmp_path / f"out{i}.txt").open("w"), stderr=subprocess.STDOUT)
        for i, command in enumerate([["gateway", "--port", str(port)], ["scheduler"]])
    ]
    try:
        yield port
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for i in range(len(procs)):
            sys.stderr.write((tmp_path / f"out{i}.txt").read_text()[-3000:])


async def test_connection_losses_give_503_never_a_lost_202(services: int, pg_url: str) -> None:
    answered: dict[int, int] = {}
    acknowledged: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client:
        await wait_healthy(client, services)
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
            response = await client.post(f"http://127.0.0.1:{services}/orders", json={"data": {"n": i}})
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
