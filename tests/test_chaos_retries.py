"""Property 8 of the reliability battery: the retry schedule under a short clock, in a real
scheduler process. An action that always fails (naming its jobs) with ``max_retries=3`` and a
sub-second backoff: each job is attempted exactly ``max_retries + 1`` times, then
``discarded`` once, and its ``on_discarded`` follow-up runs once; every retry is due within
``[0, min(max_delay, base * factor**(attempt - 1))]`` of the load that failed, and is not
started before it is due. SQLite and PostgreSQL. Prints the delays seen against their bounds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.testing.processes import Deployment
from hookspecs import Status
from tests.chaos_kit import figures, jobs_of, open_store, store_url  # noqa: F401 - fixtures
from tests.scheduler_kit import write_jobs

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

MAX_RETRIES, BASE, FACTOR, MAX_DELAY = 3, 0.4, 2.0, 1.0
#: Jobs seeded; the slack on a delay's bound for the stores' timestamp precision, in seconds.
JOBS, SLACK = 5, 0.01

APP = f"""
from hookspecs import Action, Backoff, Destination, Schedule, Then, hookimpl

class Export(Action):
    name = "export"
    schedule = Schedule(interval="@every 1s", max_retries={MAX_RETRIES},
                        backoff=Backoff(base={BASE}, factor={FACTOR}, max_delay={MAX_DELAY}))

    async def load(self, toolkit, queue):
        return Then(jobs=[job.id for job in queue.jobs], error="the warehouse refused it", on_discarded=["alert"])

class Alert(Action):
    name = "alert"
    schedule = Schedule(interval="@every 1s")

    async def load(self, toolkit, queue):
        pass

@hookimpl
def core_register_destinations():
    return [Destination("warehouse", [Export(), Alert()])]
"""


def ceiling(attempt: int) -> float:
    """The longest delay allowed after the ``attempt``-th load failed."""
    return min(MAX_DELAY, BASE * FACTOR ** (attempt - 1))


async def test_a_failing_job_is_tried_max_retries_plus_one_times_with_bounded_backoff_then_discarded_once(
    tmp_path: Path, store_url: str, figures  # noqa: F811 - the fixtures
) -> None:
    store = await open_store(store_url)
    try:
        seeded = {job.id for job in await write_jobs(store, "warehouse", "export", JOBS)}
        settings = {"supervisor": "", "wanderer": "",
                    "scheduler": {"poll_seconds": 0.1, "lease_seconds": 30, "load_timeout": 20}}
        with Deployment(tmp_path, APP, store=store_url, settings=settings) as deploy:
            deploy.start("scheduler")
            for _ in range(600):
                alerts = await jobs_of(store, Status.SUCCEEDED)
                if len([job for job in alerts if job.action == "alert"]) >= JOBS:
                    break
                deploy.check_alive()
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"the follow-ups did not all succeed within 60s:\n{deploy.logs()}", pytrace=False)
            await asyncio.sleep(2)  # two more ticks: nothing more may happen
        alerts = [job for job in await jobs_of(store) if job.action == "alert"]
        exports = [job for job in [await store.get_job(id_) for id_ in seeded] if job is not None]
    finally:
        await store.close()
    assert {job.id for job in exports} == seeded
    assert sorted(job.parent_job_id or "" for job in alerts) == sorted(seeded), "not one follow-up per discard"
    delays: list[tuple[int, float]] = []
    for job in exports:
        moves = [(t.state_after, t.attempt) for t in job.transitions]
        expected = [(Status.ACKNOWLEDGED, 0)]
        for attempt in range(1, MAX_RETRIES + 2):
            last = attempt == MAX_RETRIES + 1
            expected += [(Status.EXECUTING, attempt), (Status.DISCARDED if last else Status.FAILED, attempt)]
        assert moves == expected, f"job {job.id}: {moves}"
        assert job.status == Status.DISCARDED
        for started, failed, retried in zip(job.transitions[1::2], job.transitions[2::2], job.transitions[3::2],
                                            strict=False):
            assert failed.due_at is not None, f"job {job.id}: attempt {failed.attempt} failed with no due time"
            delay = (failed.due_at - started.created_at).total_seconds()
            assert delay <= ceiling(failed.attempt) + SLACK, (
                f"attempt {failed.attempt} due {delay:.3f}s after its load, over {ceiling(failed.attempt):g}s")
            assert retried.created_at >= failed.due_at, f"attempt {retried.attempt} started before it was due"
            delays.append((failed.attempt, delay))
    worst = {n: max(d for a, d in delays if a == n) for n in range(1, MAX_RETRIES + 1)}
    figures(f"{JOBS} jobs x {MAX_RETRIES + 1} attempts, each discarded once with one follow-up; longest delay "
            "after attempt n (bound): " + ", ".join(f"{n}: {d:.2f}s ({ceiling(n):g}s)" for n, d in worst.items()))
