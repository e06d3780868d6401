"""Error classes through a real scheduler process: a ``Discard`` is discarded after one attempt
with its ``on_discarded`` follow-up; a ``RetryAfter`` sets the job's ``due_at``."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookspecs import Status, WhereJob
from tests.scheduler_kit import eventually
from tests.test_scheduler_process import seed, start, stop

pytestmark = pytest.mark.slow

APP = """
from pathlib import Path
from hookspecs import Action, Backoff, Destination, Discard, RetryAfter, Schedule, Then, hookimpl

HERE = Path(__file__).parent

class Export(Action):
    name = "export"
    schedule = Schedule(interval="@every 1s", max_retries=72, backoff=Backoff(max_delay=600))

    async def load(self, toolkit, queue):
        if (HERE / "mode").read_text().strip() == "gone":
            return Then(error=Discard("HTTP 404 from the warehouse"), on_discarded=["alert"])
        return Then(error=RetryAfter(30, "HTTP 429, Retry-After: 30"))

class Alert(Action):
    name = "alert"
    schedule = Schedule(interval="@every 1s")

    async def load(self, toolkit, queue):
        (HERE / "alerted").write_text(",".join(job.parent_job_id or "" for job in queue.jobs))

@hookimpl
def core_register_destinations():
    return [Destination("warehouse", [Export(), Alert()])]
"""


def project(tmp_path: Path, mode: str) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "mode").write_text(mode)
    (tmp_path / "core.toml").write_text(
        'app = "app.py"\nstore = "sqlite:///core.db"\npubsub = ""\nsupervisor = ""\nwanderer = ""\n'
        "[scheduler]\npoll_seconds = 0.2\n"
    )
    return tmp_path


async def test_a_discard_is_discarded_after_one_attempt_and_runs_its_follow_up(tmp_path: Path) -> None:
    directory = project(tmp_path, "gone")
    store, job_id = await seed(directory)
    process = start(directory)
    try:
        await eventually(lambda: _alerted(directory), timeout=20)
        code, output = stop(process)
        assert code == 0, output
        job = await store.get_job(job_id)
        assert job is not None
        assert [(t.state_after, t.attempt) for t in job.transitions] == [
            (Status.ACKNOWLEDGED, 0),
            (Status.EXECUTING, 1),
            (Status.DISCARDED, 1),
        ], output
        assert job.transitions[-1].error == "Discard: HTTP 404 from the warehouse"
        assert (directory / "alerted").read_text() == job_id
    finally:
        await store.close()


async def test_retry_after_sets_due_at(tmp_path: Path) -> None:
    directory = project(tmp_path, "busy")
    store, job_id = await seed(directory)
    process = start(directory)
    try:
        failed = await eventually(lambda: store.find_jobs(WhereJob(status_in=[Status.FAILED])), timeout=20)
        code, output = stop(process)
        assert code == 0, output
        job = await store.get_job(job_id)
        assert job is not None and [j.id for j in failed] == [job_id]
        last = job.transitions[-1]
        assert (last.state_after, last.attempt) == (Status.FAILED, 1), output
        assert last.due_at is not None
        assert (last.due_at - last.created_at).total_seconds() == 30  # as asked, no jitter
        assert last.error == "RetryAfter: HTTP 429, Retry-After: 30"
    finally:
        await store.close()


async def _alerted(directory: Path) -> bool:
    return (directory / "alerted").exists()
