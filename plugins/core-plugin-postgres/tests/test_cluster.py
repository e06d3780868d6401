"""Two gateways and two schedulers on one PostgreSQL database, as real processes.

Events are posted over HTTP to both gateways and rows of a watched table change (the CDC
source runs on the gateway holding its lease: each change becomes one event); then every
job's transition log is checked:
each job ends ``succeeded``, no job was executing twice at the same time (its transitions
alternate between ``executing`` and an outcome, and its loads never overlap), none is lost.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from conftest import core_processes
from hookspecs import Event, Page, Status, WhereEvent, WhereJob

from core_plugin_postgres.store import PostgresStore

HERE = Path(__file__).parent
EVENTS = 400  # 100 single-event requests and 3 batches of 100

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def watched(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    """The table the pipeline's CDC source watches (it must exist before the gateways start)."""
    conn = await asyncpg.connect(pg_url)
    await conn.execute("CREATE TABLE watched (id int PRIMARY KEY, note text)")
    yield conn
    await conn.close()


@pytest.fixture
def cluster(pg_url: str, tmp_path: Path, watched: asyncpg.Connection) -> Iterator[list[int]]:
    """Start 2 gateways and 2 schedulers; yield the gateways' ports; SIGTERM them after."""
    env = {**os.environ, "CORE_STORE": pg_url, "CORE_PUBSUB": pg_url, "CORE_SUPERVISOR": pg_url,
           "CORE_WANDERER": pg_url, "CORE_APP": str(HERE / "cluster" / "pipeline.py"),
           "CLUSTER_LOG_DIR": str(tmp_path), "CLUSTER_CDC_URL": pg_url, "CORE_SCHEDULER_POLL_SECONDS": "0.2"}
    ports = [free_port(), free_port()]
    commands = [["gateway", "--port", str(port)] for port in ports] + [["scheduler"], ["scheduler"]]
    with core_processes(commands, [env] * len(commands), tmp_path, tail=3000):
        yield ports


async def wait_healthy(client: httpx.AsyncClient, port: int) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        try:
            if (await client.get(f"http://127.0.0.1:{port}/_health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert asyncio.get_running_loop().time() < deadline, f"gateway on {port} never became healthy"
        await asyncio.sleep(0.1)


async def all_jobs(store: PostgresStore) -> list[str]:
    ids: list[str] = []
    after: str | None = None
    while True:
        page = await store.find_jobs(WhereJob(page=Page(limit=1000, after=after)))
        if not page:
            return ids
        ids += [job.id for job in page if job.status is not Status.SUCCEEDED]
        after = page[-1].id


async def test_two_gateways_two_schedulers(
    cluster: list[int], store: PostgresStore, tmp_path: Path, watched: asyncpg.Connection
) -> None:
    accepted: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for port in cluster:
            await wait_healthy(client, port)
        # Row changes while both gateways run: the one holding the CDC lease emits each once
        # (from the moment its row trigger is installed).
        deadline = asyncio.get_running_loop().time() + 30
        while not await watched.fetchval("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'core_cdc_%'"):
            assert asyncio.get_running_loop().time() < deadline, "the CDC trigger was never installed"
            await asyncio.sleep(0.1)
        await watched.execute("INSERT INTO watched SELECT g, 'new' FROM generate_series(1, 30) g")
        await watched.execute("UPDATE watched SET note = 'changed' WHERE id <= 10")

        async def post(i: int, body: dict[str, object]) -> None:
            response = await client.post(f"http://127.0.0.1:{cluster[i % 2]}/orders", json=body)
            assert response.status_code == 202, response.text
            accepted.append(response.text)

        singles = [post(i, {"data": {"n": i}}) for i in range(100)]
        batches = [post(i, {"events": [{"data": {"n": i, "k": k}} for k in range(100)]}) for i in range(3)]
        await asyncio.gather(*singles, *batches)

    changes: list[Event] = []
    deadline = asyncio.get_running_loop().time() + 30
    while len(changes) < 40:
        assert asyncio.get_running_loop().time() < deadline, f"{len(changes)} of 40 CDC events"
        await asyncio.sleep(0.2)
        changes = await store.find_events(WhereEvent(sources=["shop_db"], page=Page(limit=1000)))
    assert sorted(e.context["cdc"]["change_id"] for e in changes) == sorted(
        {e.context["cdc"]["change_id"] for e in changes}), "a change was emitted twice"
    assert sorted(e.name for e in changes) == ["watched.insert"] * 30 + ["watched.update"] * 10

    jobs = await store.find_jobs(WhereJob(sources=["shop"], page=Page(limit=10_000)))
    assert len(jobs) == 2 * EVENTS  # every accepted event has its two jobs: none lost
    deadline = asyncio.get_running_loop().time() + 90
    while pending := await all_jobs(store):
        assert asyncio.get_running_loop().time() < deadline, f"{len(pending)} jobs never succeeded"
        await asyncio.sleep(0.5)

    for job in jobs:
        full = await store.get_job(job.id)
        assert full is not None
        states = [t.state_after for t in full.transitions]
        assert states[0] is Status.ACKNOWLEDGED and states[-1] is Status.SUCCEEDED, states
        for before, after in zip(full.transitions, full.transitions[1:], strict=False):
            assert after.state_before == before.state_after, states  # one writer at a time
            if after.state_after is Status.EXECUTING:
                assert before.state_after is not Status.EXECUTING, states

    loads: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for log in tmp_path.glob("*.log"):
        for line in log.read_text().splitlines():
            job_id, _pid, began, ended = line.split()
            loads[job_id].append((float(began), float(ended)))
    every_job = await store.find_jobs(WhereJob(page=Page(limit=10_000)))  # the CDC events' too
    assert set(loads) == {job.id for job in every_job}
    for spans in loads.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, "a job was loaded twice at the same time"
