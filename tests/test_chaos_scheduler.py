"""The scheduler under faults, as real processes (``core start scheduler``) on a SQLite store:
SIGTERM during delivery, a poison event in a batch, a load that blocks the event loop, and
SIGKILL mid-batch again and again (issue 20, properties 1, 9 and 10). Each prints what it
measured (``nox -s chaos``, or ``pytest -m chaos -s``)."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from hookspecs import Status
from tests.chaos_kit import deployment, figures, jobs_of, loads, open_store, store_url  # noqa: F401 - fixtures
from tests.scheduler_kit import write_jobs

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]


@pytest.mark.parametrize(("mode", "grace"), [("slow 1", 10.0), ("slow 60", 1.0)], ids=["within-grace", "past-grace"])
async def test_sigterm_starts_no_load_and_leaves_no_job_executing(
    tmp_path: Path, figures, mode: str, grace: float  # noqa: F811 - the fixture
) -> None:
    store = await open_store(tmp_path)
    try:
        seeded = await write_jobs(store, "warehouse", "export", 100)
        with deployment(tmp_path, mode, batch_size=20, grace_seconds=grace, load_timeout=100,
                        lease_seconds=120) as deploy:
            scheduler = deploy.start("scheduler")
            deploy.wait_until(lambda: loads(tmp_path), "the first load to start")
            signalled = time.time()
            started = time.monotonic()
            status = scheduler.stop(timeout=60)
            took = time.monotonic() - started
            output = scheduler.output()
            deploy.processes.clear()  # stopped here, checked here
        assert status == 0 and "core: stopped" in output, output
        late = [at for at, _ in loads(tmp_path) if at > signalled]
        assert late == [], f"{len(late)} load(s) started after SIGTERM:\n{output}"
        assert await jobs_of(store, Status.EXECUTING) == []
        jobs = {job.id: job for job in await jobs_of(store)}
        released = [job for job in jobs.values() if job.status == Status.AWAITING]
        assert all(job.attempt == 0 for job in released)  # a stop costs no retry
        succeeded = [job for job in jobs.values() if job.status == Status.SUCCEEDED]
        (first_ids,) = [ids for _, ids in loads(tmp_path)]
        if grace > 1:  # the load finished within the grace period and was recorded
            assert {job.id for job in succeeded} == set(first_ids)
        else:  # cancelled past the grace period: its jobs released, due now
            assert succeeded == [] and set(first_ids) <= {job.id for job in released}
        untouched = [job for job in jobs.values() if job.status == Status.ACKNOWLEDGED]
        assert len(released) + len(succeeded) + len(untouched) == len(seeded)
        figures(f"SIGTERM to exit {took:.2f}s (grace {grace:g}s); loads started after it 0; "
                f"jobs released {len(released)}, succeeded {len(succeeded)}, left executing 0")
    finally:
        await store.close()


async def test_a_poison_event_is_discarded_alone_and_its_batch_succeeds(tmp_path: Path, figures) -> None:  # noqa: F811
    store = await open_store(tmp_path)
    try:
        jobs = await write_jobs(store, "warehouse", "export", 10)
        poison = jobs[3]
        with deployment(tmp_path, "poison", max_retries=2, batch_size=10) as deploy:
            deploy.start("scheduler")

            async def settled() -> bool:
                found = {job.id: job.status for job in await jobs_of(store)}
                return found[poison.id] == Status.DISCARDED and sum(s == Status.SUCCEEDED for s in found.values()) == 9

            deadline = time.monotonic() + 60
            while not await settled():
                deploy.check_alive()
                assert time.monotonic() < deadline, deploy.logs()
                time.sleep(0.1)
        history = await store.get_job(poison.id)
        assert history is not None
        attempts = [t.attempt for t in history.transitions if t.state_after == Status.EXECUTING]
        assert attempts == [1, 2, 3]  # max_retries = 2: three attempts, the last discards
        sizes = [len(ids) for _, ids in loads(tmp_path)]
        assert sizes[0] == 10 and set(sizes[1:]) == {1}
        figures(f"good jobs lost to the poison event 0 of 9; poison attempts {len(attempts)}; "
                f"loads {len(sizes)} (sizes {sizes})")
    finally:
        await store.close()


async def test_a_load_blocking_the_event_loop_never_silences_health(tmp_path: Path, figures) -> None:  # noqa: F811
    store = await open_store(tmp_path)
    try:
        (job,) = await write_jobs(store, "warehouse", "export", 1)
        with deployment(tmp_path, "block 8", load_timeout=2, lease_seconds=30) as deploy:
            scheduler = deploy.start("scheduler")
            deploy.wait_until(lambda: (tmp_path / "blocked").exists(), "the blocking load to start")
            asked = time.monotonic()
            during = httpx.get(f"{deploy.scheduler_url}/_health", timeout=6)  # the block lasts 8 s
            answered = time.monotonic() - asked
            scrape = httpx.get(f"{deploy.scheduler_url}/metrics", timeout=6)
            assert during.status_code == 503 and during.json()["status"] == "stalled", during.text
            assert "core_event_loop_lag_seconds" in scrape.text
            deploy.wait_until(lambda: "blocked for" in scheduler.output(), "the block to be reported", 20)
            assert "past scheduler.load_timeout = 2s" in scheduler.output()
            assert "warehouse.export, 1 job(s)" in scheduler.output()  # it names the load

            async def delivered() -> bool:
                found = await store.get_job(job.id)
                return found is not None and found.status == Status.SUCCEEDED

            deadline = time.monotonic() + 30
            while not await delivered():
                deploy.check_alive()
                assert time.monotonic() < deadline, deploy.logs()
                time.sleep(0.1)
            assert httpx.get(f"{deploy.scheduler_url}/_health", timeout=10).status_code == 200
            stalls = [line for line in httpx.get(f"{deploy.scheduler_url}/metrics", timeout=10).text.splitlines()
                      if line.startswith("core_event_loop_stalls_total")]
            assert stalls == ["core_event_loop_stalls_total 1.0"]
        assert await jobs_of(store, Status.EXECUTING) == []
        figures(f"/_health answered {answered:.2f}s into an 8s block (503 stalled); block reported; "
                "job delivered after it, 0 lost")
    finally:
        await store.close()


async def test_sigkill_mid_batch_loses_no_job(tmp_path: Path, figures, store_url: str) -> None:  # noqa: F811
    """Property 1: SIGKILL mid-batch 20 times under a backlog, restart each time: every job
    delivered at least once, duplicates bounded by the jobs in flight at the kills, nothing
    left executing after the last restart."""
    cycles, per_cycle = 20, 100
    rng = random.Random(20)
    store = await open_store(store_url)
    try:
        ids = {job.id for job in await write_jobs(store, "warehouse", "export", 2000)}
        in_flight: list[int] = []
        with deployment(tmp_path, "slow 0.2", store=store_url, max_retries=1000, batch_size=50, lease_seconds=2,
                        load_timeout=1.5, grace_seconds=1) as deploy:
            for _ in range(cycles):
                before = len(loads(tmp_path))
                scheduler = deploy.start("scheduler")
                deploy.wait_until(lambda n=before: len(loads(tmp_path)) > n, "a load to start")
                time.sleep(rng.uniform(0.2, 1.0))
                scheduler.process.send_signal(signal.SIGKILL)
                scheduler.process.wait(timeout=30)
                deploy.processes.remove(scheduler)
                in_flight.append(len(await jobs_of(store, Status.EXECUTING)))
                ids |= {job.id for job in await write_jobs(store, "warehouse", "export", per_cycle)}
            restarted = time.monotonic()
            deploy.start("scheduler")

            async def done() -> bool:
                return len(await jobs_of(store, Status.SUCCEEDED)) == len(ids)

            deadline = time.monotonic() + 120
            while not await done():
                deploy.check_alive()
                assert time.monotonic() < deadline, deploy.logs()
                time.sleep(0.1)
            recovery = time.monotonic() - restarted
        delivered = Counter(i for _, batch in loads(tmp_path, "done") for i in batch)
        assert all(in_flight), f"a kill found no batch in flight: {in_flight}"  # mid-batch, under load
        assert ids <= set(delivered), f"{len(ids - set(delivered))} job(s) never delivered"
        duplicates = sum(n - 1 for n in delivered.values())
        assert duplicates <= sum(in_flight)
        assert await jobs_of(store, Status.EXECUTING) == []
        assert {job.status for job in await jobs_of(store)} == {Status.SUCCEEDED}
        figures(f"{store_url.split(':')[0]}: {cycles} SIGKILLs, {len(ids)} jobs: 0 lost, duplicates {duplicates} "
                f"(jobs in flight at the kills {sum(in_flight)}: {in_flight}); "
                f"last restart to all delivered {recovery:.1f}s (claim lease 2s)")
    finally:
        await store.close()
