"""Three schedulers on one PostgreSQL database, as real processes, share one rate limit.

A backlog of jobs of a realtime action limited to ``10/s`` (burst 2) is stored, then three
``core start scheduler`` processes deliver it. A realtime action's poll takes no lease, so all
three claim at once and only the store's token bucket holds them to the limit. The loads'
times, logged by the action, must show 10 jobs a second ± 10 % past the burst, over a window
of at least 5 s, every job delivered once, and every scheduler having taken part.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from conftest import core_processes
from core.testing import make_event
from hookspecs import Queue

from core_plugin_postgres.store import PostgresStore

HERE = Path(__file__).parent
JOBS = 150
RATE = 10.0
SCHEDULERS = 3
PORT = int(os.environ.get("RATE_TEST_PORT", "19100"))  # the schedulers' health ports: PORT, PORT + 1, …

pytestmark = pytest.mark.slow


def logged(log_dir: Path) -> list[tuple[float, str, str]]:
    """Every logged load of a job: ``(time, job id, pid)``, by time."""
    lines = [line.split() for log in log_dir.glob("*.log") for line in log.read_text().splitlines()]
    return sorted((float(at), job, pid) for job, pid, at in lines)


async def test_three_schedulers_hold_a_10_per_second_limit(
    pg_url: str, store: PostgresStore, tmp_path: Path
) -> None:
    events = [make_event(actions=[("sink", "limited")]) for _ in range(JOBS)]
    assert await store.insert_queue(Queue(events=events)) == []
    env = {**os.environ, "CORE_STORE": pg_url, "CORE_APP": str(HERE / "ratelimit" / "limited_pipeline.py"),
           "RATE_LOG_DIR": str(tmp_path), "CORE_SCHEDULER_BATCH_SIZE": "50",
           "CORE_SCHEDULER_POLL_SECONDS": "0.2"}
    envs = [{**env, "CORE_SCHEDULER_PORT": str(PORT + i)} for i in range(SCHEDULERS)]
    with core_processes([["scheduler"]] * SCHEDULERS, envs, tmp_path) as procs:
        deadline = asyncio.get_running_loop().time() + JOBS / RATE + 45
        while len(logged(tmp_path)) < JOBS:
            assert asyncio.get_running_loop().time() < deadline, f"{len(logged(tmp_path))} of {JOBS} jobs loaded"
            assert all(proc.poll() is None for proc in procs), "a scheduler exited"
            await asyncio.sleep(0.2)
    loads = logged(tmp_path)
    assert sorted(job for _, job, _ in loads) == sorted(job.id for event in events for job in event.jobs)
    assert len({pid for _, _, pid in loads}) == SCHEDULERS, "not every scheduler delivered"
    # Past the burst (and the schedulers' start), the n-th job after the first is due n/RATE later.
    first, last = loads[10], loads[-1]
    window = last[0] - first[0]
    rate = (len(loads) - 1 - 10) / window
    assert window >= 5, f"a window of {window:.1f}s is too short to measure"
    assert RATE * 0.9 <= rate <= RATE * 1.1, f"{rate:.2f} jobs/s over {window:.1f}s, limit {RATE:g}/s"
