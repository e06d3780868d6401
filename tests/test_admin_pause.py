"""Pause and resume through the admin API, honoured by every running scheduler (the one of
``core start`` and a lone ``core start scheduler`` on the same store): a paused action gets no
load (realtime or scheduled) while another action of the same events is loaded; once resumed,
its backlog drains."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.admin_kit import HEADERS, core_start, environment, ingest

pytestmark = pytest.mark.slow

APP = """
from pathlib import Path
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

HERE = Path(__file__).parent

class Record(Action):
    def __init__(self, name, schedule):
        self.name, self.schedule = name, schedule

    async def load(self, toolkit, queue):
        for job in queue.jobs:
            (HERE / f"{self.name}-{job.event_id}").write_text("")

@hookimpl
def core_register_sources():
    return [Source("web", [HttpTrigger("track", "/track")])]

@hookimpl
def core_register_destinations():
    return [Destination("crm", [Record("notify", Schedule(realtime=True, interval="@every 1s")),
                                Record("sync", Schedule(interval="@every 1s"))]),
            Destination("audit", [Record("log", Schedule(realtime=True, interval="@every 1s"))])]

@hookimpl
def core_register_flows():
    return [Flow("all", "web", ["crm.notify", "crm.sync", "audit.log"])]
"""


@contextmanager
def lone_scheduler(directory: Path) -> Iterator[None]:
    """``core start scheduler`` in ``directory`` (its listener on a free port), once it runs."""
    process = subprocess.Popen([sys.executable, "-m", "core", "start", "scheduler"], cwd=directory,
                               env=environment(CORE_SCHEDULER_PORT="0"), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    seen: list[str] = []
    try:
        while "scheduler running:" not in (line := process.stdout.readline()):
            assert line, "core start scheduler exited:\n" + "".join(seen)
            seen.append(line)
        yield
    finally:
        process.terminate()
        process.communicate(timeout=30)


def wait_for(paths: list[Path], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"not loaded: {[p.name for p in paths if not p.exists()]}"
        time.sleep(0.05)


def test_a_paused_destination_gets_no_load_until_resumed(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "core.toml").write_text(
        'app = "app.py"\nstore = "sqlite:///core.db"\npubsub = "memory://"\nsupervisor = ""\nwanderer = ""\n'
        "[scheduler]\npoll_seconds = 0.1\n"
    )
    with (
        core_start(tmp_path) as (gateway, admin),
        lone_scheduler(tmp_path),
        httpx.Client(headers=HEADERS["write"], timeout=30) as api,
    ):
        paused = api.post(f"{admin}/destinations/crm/pause", json={"reason": "crm is down"})
        assert paused.status_code == 200 and paused.json()["by"] == "ops"
        assert api.post(f"{admin}/destinations/crm/pause").status_code == 409
        assert api.get(f"{admin}/destinations/crm/actions/notify").json()["paused"] is True
        assert api.get(f"{admin}/destinations/audit").json()["paused"] is False
        events = ingest(gateway, 3)
        wait_for([tmp_path / f"log-{e}" for e in events])  # audit.log (realtime) is loaded
        for _ in range(3):  # more events, more polls: crm.sync's 1s interval ticks by too
            wait_for([tmp_path / f"log-{e}" for e in ingest(gateway, 1)])
            time.sleep(0.5)
        assert not list(tmp_path.glob("notify-*")) and not list(tmp_path.glob("sync-*"))
        backlog = api.get(f"{admin}/destinations/crm/actions/notify").json()["backlog"]
        assert sum(backlog.values()) == 6
        assert api.post(f"{admin}/destinations/crm/resume").json()["resumed"] == "crm"
        assert api.post(f"{admin}/destinations/crm/resume").status_code == 409
        wait_for([tmp_path / f"{a}-{e}" for e in events for a in ("notify", "sync")])
