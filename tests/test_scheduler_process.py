"""The scheduler as a real process (`core start scheduler`): SIGTERM mid-load, and SIGKILL
mid-load then a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.builtin.sqlite.store import SQLiteStore
from hookspecs import Status, WhereJob
from tests.scheduler_kit import eventually, write_jobs

pytestmark = pytest.mark.slow

#: A destination whose load writes ``loading`` then behaves as the file ``mode`` says.
APP = """
import asyncio
from pathlib import Path
from hookspecs import Action, Destination, Schedule, hookimpl

HERE = Path(__file__).parent

class Export(Action):
    name = "export"
    schedule = Schedule(interval="@every 1s", max_retries=3)

    async def load(self, toolkit, queue):
        (HERE / "loading").write_text(",".join(job.id for job in queue.jobs))
        mode = (HERE / "mode").read_text().strip()
        if mode == "hang":
            await asyncio.sleep(3600)
        elif mode == "slow":
            await asyncio.sleep(1.0)
        (HERE / "loaded").write_text(",".join(job.id for job in queue.jobs))

@hookimpl
def core_register_destinations():
    return [Destination("warehouse", [Export()])]
"""


def project(tmp_path: Path, mode: str, **scheduler: float) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "mode").write_text(mode)
    settings = {"poll_seconds": 0.2, "lease_seconds": 30, "load_timeout": 20, "grace_seconds": 5, **scheduler}
    (tmp_path / "core.toml").write_text(
        'app = "app.py"\nstore = "sqlite:///core.db"\npubsub = ""\nsupervisor = ""\nwanderer = ""\n'
        "[scheduler]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items())
    )
    return tmp_path


def start(directory: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")} | {"CORE_LOAD_PLUGINS": ""}
    return subprocess.Popen(
        [sys.executable, "-m", "core", "start", "scheduler"],
        cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


async def seed(directory: Path) -> tuple[SQLiteStore, str]:
    """Open the project's store and write one job for warehouse.export (as the gateway would)."""
    store = SQLiteStore(f"sqlite:///{directory / 'core.db'}")
    await store.open()
    (job,) = await write_jobs(store, "warehouse", "export")
    return store, job.id


def wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"the scheduler exited early:\n{output}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} did not appear within {timeout}s")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, str]:
    process.send_signal(sig)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"the scheduler did not exit within {timeout}s:\n{output.decode()}") from None
    return process.returncode, output.decode()


async def test_sigterm_lets_a_running_load_finish(tmp_path: Path) -> None:
    directory = project(tmp_path, "slow")
    store, job_id = await seed(directory)
    process = start(directory)
    try:
        wait_for_file(directory / "loading", process)
        code, output = stop(process)
        assert code == 0, output
        job = await store.get_job(job_id)
        assert job is not None and job.status == Status.SUCCEEDED, output
    finally:
        await store.close()


async def test_sigterm_releases_a_load_past_the_grace_period(tmp_path: Path) -> None:
    directory = project(tmp_path, "hang", grace_seconds=0.5)
    store, job_id = await seed(directory)
    process = start(directory)
    try:
        wait_for_file(directory / "loading", process)
        code, output = stop(process)
        assert code == 0, output
        job = await store.get_job(job_id)
        assert job is not None
        assert (job.status, job.attempt) == (Status.AWAITING, 0), output  # released: no retry spent
        assert not await store.find_jobs(WhereJob(status_in=[Status.EXECUTING]))
    finally:
        await store.close()


async def test_a_job_left_executing_by_a_killed_scheduler_is_recovered_and_delivered(tmp_path: Path) -> None:
    directory = project(tmp_path, "hang", lease_seconds=2, load_timeout=1.5)
    store, job_id = await seed(directory)
    process = start(directory)
    try:
        wait_for_file(directory / "loading", process)
        stop(process, signal.SIGKILL)
        job = await store.get_job(job_id)
        assert job is not None and job.status == Status.EXECUTING

        (directory / "mode").write_text("ok")
        process = start(directory)
        await eventually(lambda: _status_is(store, job_id, Status.SUCCEEDED), timeout=20)
        code, output = stop(process)
        assert code == 0, output
        job = await store.get_job(job_id)
        assert job is not None
        assert [(t.state_after, t.attempt) for t in job.transitions] == [
            (Status.ACKNOWLEDGED, 0),
            (Status.EXECUTING, 1),
            (Status.FAILED, 1),  # recovered: the killed load counts as an attempt
            (Status.EXECUTING, 2),
            (Status.SUCCEEDED, 2),
        ]
        assert (directory / "loaded").read_text() == job_id
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        await store.close()


async def _status_is(store: SQLiteStore, job_id: str, status: Status) -> bool:
    job = await store.get_job(job_id)
    return job is not None and job.status == status
