"""Property 5 of the reliability battery: several scheduler processes on one store never run
one job twice at once. Each load appends a start and a done mark per job to ``loads.log``; per
job the marks, in time order, must alternate start, done, start, done (two starts in a row
would be two overlapping executions). SQLite and PostgreSQL, two and four schedulers. Prints
the loads and how many jobs were delivered more than once."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from hookspecs import Status
from tests.chaos_kit import deployment, figures, jobs_of, loads, open_store, store_url  # noqa: F401 - fixtures
from tests.scheduler_kit import write_jobs

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]

#: Jobs seeded, and the batch size: many small loads for the schedulers to contend for.
JOBS, BATCH = 60, 5


def overlaps(directory: Path) -> dict[str, list[str]]:
    """The jobs whose marks do not alternate start/done: job id -> its marks in time order."""
    marks: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for what in ("start", "done"):
        for at, ids in loads(directory, what):
            for job in ids:
                marks[job].append((at, what))
    found = {}
    for job, seen in marks.items():
        order = [what for _, what in sorted(seen)]
        if any(what != ("start", "done")[i % 2] for i, what in enumerate(order)):
            found[job] = order
    return found


@pytest.mark.parametrize("schedulers", [2, 4])
async def test_several_schedulers_on_one_store_never_overlap_two_executions_of_a_job(
    tmp_path: Path, store_url: str, schedulers: int, figures  # noqa: F811 - the fixtures
) -> None:
    store = await open_store(store_url)
    try:
        seeded = await write_jobs(store, "warehouse", "export", JOBS)
        with deployment(tmp_path, "slow 0.2", store=store_url, batch_size=BATCH) as deploy:
            for _ in range(schedulers):
                deploy.start("scheduler")
            for _ in range(900):
                if len(await jobs_of(store, Status.SUCCEEDED)) == JOBS:
                    break
                deploy.check_alive()
                await asyncio.sleep(0.2)
            else:
                pytest.fail(f"not every job succeeded within 180s:\n{deploy.logs()}", pytrace=False)
        found = overlaps(tmp_path)
        assert not found, f"{len(found)} jobs ran twice at once: {list(found.items())[:3]}"
        started = loads(tmp_path)
        delivered = Counter(job for _, ids in started for job in ids)
        assert set(delivered) == {job.id for job in seeded}
        again = sum(count > 1 for count in delivered.values())
        figures(f"{schedulers} schedulers, {len(started)} loads of {JOBS} jobs: 0 overlapping executions, "
                f"{again} jobs delivered more than once")
    finally:
        await store.close()
