"""Delivery controls with several schedulers on one PostgreSQL database, as real processes.

- A realtime action with ``concurrency = 2``: three schedulers deliver a backlog found by their
  polls, then events posted to a gateway and published on the PostgreSQL pub/sub (realtime
  delivery, ``claim_ids``); the loads logged by the action (enter and exit times) never overlap
  more than 2 at once.
- An action ordered by ``data.key``: each key's jobs are loaded in creation order while the first
  job of the key ``bad`` fails (the other keys go on meanwhile), and once it is discarded the
  key's next jobs follow.
- A terminal error (``Discard``) is discarded after one attempt, and its ``on_discarded``
  follow-up runs as a child job.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import core_processes
from core.testing import free_port, make_event
from hookspecs import Event, Queue, Status, WhereJob

from core_plugin_postgres.store import PostgresStore

HERE = Path(__file__).parent
SCHEDULERS = 3
PORT = int(os.environ.get("DELIVERY_TEST_PORT", "19130"))  # the schedulers' health ports: PORT, PORT + 1, …

pytestmark = pytest.mark.slow


def lines(log_dir: Path, kind: str) -> list[list[str]]:
    """The logged lines of one action (``capped``, ``ordered``), without their first word."""
    found = [line.split() for log in log_dir.glob("*.log") for line in log.read_text().splitlines()]
    return [words[1:] for words in found if words[0] == kind]


@contextmanager
def schedulers(pg_url: str, log_dir: Path, batch_size: int = 5, *,
               gateway: int | None = None) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``SCHEDULERS`` ``core start scheduler`` processes on the database (and with ``gateway``, a
    gateway on that port and the PostgreSQL pub/sub between them), stopped by SIGTERM after."""
    env = {**os.environ, "CORE_STORE": pg_url, "CORE_APP": str(HERE / "delivery" / "delivery_pipeline.py"),
           "DELIVERY_LOG_DIR": str(log_dir), "CORE_SCHEDULER_BATCH_SIZE": str(batch_size),
           "CORE_SCHEDULER_POLL_SECONDS": "0.2", "CORE_PUBSUB": pg_url if gateway else ""}
    commands = [["scheduler"]] * SCHEDULERS + ([["gateway", "--port", str(gateway)]] if gateway else [])
    envs = [{**env, "CORE_SCHEDULER_PORT": str(PORT + i)} for i in range(len(commands))]
    with core_processes(commands, envs, log_dir) as procs:
        yield procs


async def wait_for(check: Callable[[], Awaitable[bool]], procs: list[subprocess.Popen[bytes]], timeout: float,
                   what: str) -> None:
    """Wait until ``check()`` holds, every scheduler still running."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        assert all(proc.poll() is None for proc in procs), "a scheduler exited"
        await asyncio.sleep(0.2)


def most_at_once(loads: list[list[str]]) -> int:
    """The most loads of ``capped`` in flight at one time (an exit sorts before an entry at one time)."""
    edges = sorted([(float(enter), 1) for _, _, enter, _ in loads] + [(float(leave), -1) for *_, leave in loads])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


async def test_three_schedulers_never_run_more_loads_than_the_concurrency(
    pg_url: str, store: PostgresStore, tmp_path: Path,
) -> None:
    events = [make_event(actions=[("sink", "capped")]) for _ in range(40)]
    assert await store.insert_queue(Queue(events=events)) == []
    # One job per claim: a scheduler's pass loads one job at a time, so the limit of 2 can only
    # be reached, and passed, by schedulers together.
    with schedulers(pg_url, tmp_path, batch_size=1) as procs:
        async def delivered() -> bool:
            return len(lines(tmp_path, "capped")) >= len(events)

        await wait_for(delivered, procs, 60, "40 loads")
    loads = lines(tmp_path, "capped")
    assert sorted(job for job, *_ in loads) == sorted(job.id for event in events for job in event.jobs)
    assert len({pid for _, pid, _, _ in loads}) > 1, "one scheduler delivered everything: nothing was shared"
    most = most_at_once(loads)
    assert most == 2, f"{most} jobs were loading at once under a concurrency of 2"


async def test_realtime_deliveries_through_the_broker_hold_the_concurrency_too(
    pg_url: str, store: PostgresStore, tmp_path: Path,
) -> None:
    port = free_port()
    with schedulers(pg_url, tmp_path, batch_size=1, gateway=port) as procs:
        async with httpx.AsyncClient(timeout=10) as client:
            async def healthy() -> bool:
                try:
                    return (await client.get(f"http://127.0.0.1:{port}/_health")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(healthy, procs, 30, "the gateway")
            for n in range(30):
                response = await client.post(f"http://127.0.0.1:{port}/capped", json={"data": {"n": n}})
                assert response.status_code == 202, response.text

        async def delivered() -> bool:
            return len(lines(tmp_path, "capped")) >= 30

        await wait_for(delivered, procs, 60, "30 loads")
    loads = lines(tmp_path, "capped")
    assert len({job for job, *_ in loads}) == len(loads) == 30, "a job was loaded twice or lost"
    most = most_at_once(loads)
    assert most == 2, f"{most} jobs were loading at once under a concurrency of 2"


def keyed(key: str, n: int) -> Event:
    event = make_event(data={"key": key, "n": n}, actions=[("sink", "ordered")])
    event.jobs[0].ordering_key = key
    return event


async def test_each_key_is_loaded_in_order_while_one_key_fails_and_a_discard_releases_it(
    pg_url: str, store: PostgresStore, tmp_path: Path,
) -> None:
    events = [keyed(key, n) for n in range(6) for key in ("bad", "a", "b")]
    assert await store.insert_queue(Queue(events=events)) == []
    with schedulers(pg_url, tmp_path) as procs:
        async def delivered() -> bool:
            return len({job for job, *_ in lines(tmp_path, "ordered")}) >= len(events)

        await wait_for(delivered, procs, 60, "every ordered job")
    loads = sorted(lines(tmp_path, "ordered"), key=lambda words: float(words[-1]))
    for key in ("bad", "a", "b"):
        seen = [int(n) for _, k, n, *_ in loads if k == key]
        assert seen == [0, 0, 0, *range(1, 6)] if key == "bad" else seen == list(range(6)), (key, seen)
    first_try = next(float(at) for _, k, n, attempt, _, at in loads if (k, n, attempt) == ("bad", "0", "1"))
    discarded_at = max(float(at) for _, k, n, _, _, at in loads if (k, n) == ("bad", "0"))
    assert any(first_try < float(at) < discarded_at for _, k, *_, at in loads if k != "bad"), (
        "the other keys waited for the failing one")
    [failed] = await store.find_jobs(WhereJob(ids=[events[0].jobs[0].id]))
    assert failed.status is Status.DISCARDED and failed.attempt == 3
    later = await store.find_jobs(WhereJob(ids=[event.jobs[0].id for event in events[1:]]))
    assert all(job.status is Status.SUCCEEDED for job in later)


async def test_a_terminal_error_is_discarded_after_one_attempt_with_its_follow_ups(
    pg_url: str, store: PostgresStore, tmp_path: Path,
) -> None:
    events = [make_event(actions=[("sink", "terminal")]) for _ in range(3)]
    assert await store.insert_queue(Queue(events=events)) == []
    parents = sorted(event.jobs[0].id for event in events)
    with schedulers(pg_url, tmp_path) as procs:
        async def alerted() -> bool:
            return len(lines(tmp_path, "alert")) >= len(parents)

        await wait_for(alerted, procs, 60, "the on_discarded follow-ups")
    assert sorted(parent for _, parent, _ in lines(tmp_path, "alert")) == parents
    for parent in parents:
        job = await store.get_job(parent)
        assert job is not None
        assert [(t.state_after, t.attempt) for t in job.transitions] == [
            (Status.ACKNOWLEDGED, 0), (Status.EXECUTING, 1), (Status.DISCARDED, 1)]
        assert job.transitions[-1].error == "Discard: HTTP 404 from the sink"
