"""Ordering per key through two real scheduler processes on one SQLite file: each key's jobs are
loaded in creation order while the first job of the key ``bad`` fails (the other keys go on
meanwhile), and once it is discarded the key's next jobs follow. The pipeline is the one of the
PostgreSQL plugin's test of the same (``delivery_pipeline.py``), so both stores face one app."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.builtin.sqlite.store import SQLiteStore
from core.testing import make_event
from hookspecs import Event, Queue, Status, WhereJob
from tests.scheduler_kit import eventually
from tests.test_scheduler_process import start, stop

pytestmark = pytest.mark.slow

APP = Path(__file__).parents[1] / "plugins" / "core-plugin-postgres" / "tests" / "delivery" / "delivery_pipeline.py"
KEYS = ("bad", "a", "b")


def keyed(key: str, n: int) -> Event:
    event = make_event(data={"key": key, "n": n}, actions=[("sink", "ordered")])
    event.jobs[0].ordering_key = key
    return event


def loads(directory: Path) -> list[list[str]]:
    """The ordered action's logged loads, ``[job, key, n, attempt, pid, time]``, by time."""
    found = [line.split()[1:] for log in directory.glob("*.log") for line in log.read_text().splitlines()]
    return sorted(found, key=lambda words: float(words[-1]))


async def test_two_schedulers_load_each_key_in_order_while_one_key_fails(tmp_path: Path) -> None:
    homes = [tmp_path / "one", tmp_path / "two"]
    for home in homes:  # one project per process (its own health port), one database
        home.mkdir()
        (home / "core.toml").write_text(
            f'app = "{APP}"\nstore = "sqlite:///{tmp_path / "core.db"}"\npubsub = ""\nsupervisor = ""\n'
            'wanderer = ""\n[scheduler]\npoll_seconds = 0.2\nbatch_size = 5\nport = 0\n'
        )
    store = SQLiteStore(f"sqlite:///{tmp_path / 'core.db'}")
    await store.open()
    events = [keyed(key, n) for n in range(6) for key in KEYS]
    try:
        assert await store.insert_queue(Queue(events=events)) == []
        os.environ["DELIVERY_LOG_DIR"] = str(tmp_path)  # start() passes it on: not a CORE_ variable
        processes = [start(home) for home in homes]
        try:
            async def all_loaded() -> bool:
                return len({words[0] for words in loads(tmp_path)}) == len(events)

            await eventually(all_loaded, timeout=40)
        finally:
            del os.environ["DELIVERY_LOG_DIR"]
            outputs = [stop(process) for process in processes]
        assert all(code == 0 for code, _ in outputs), outputs
        found = loads(tmp_path)
        for key in KEYS:
            seen = [int(n) for _, k, n, *_ in found if k == key]
            assert seen == ([0, 0, 0, *range(1, 6)] if key == "bad" else list(range(6))), (key, seen)
        tries = [float(at) for _, k, n, *_, at in found if (k, n) == ("bad", "0")]
        assert any(tries[0] < float(at) < tries[-1] for _, k, *_, at in found if k != "bad"), (
            "the other keys waited for the failing one")
        jobs = {job.id: job for job in await store.find_jobs(WhereJob(ids=[e.jobs[0].id for e in events]))}
        assert (jobs[events[0].jobs[0].id].status, jobs[events[0].jobs[0].id].attempt) == (Status.DISCARDED, 3)
        assert all(jobs[event.jobs[0].id].status is Status.SUCCEEDED for event in events[1:])
    finally:
        await store.close()
