"""Replay into a new action, end to end: the stored events matching a filter, replayed through
the admin API into an action no flow feeds, are each loaded once by the running scheduler (and
the events the filter leaves out not at all)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.admin_kit import HEADERS, core_start, ingest

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
            with (HERE / f"{self.name}-{job.event_id}").open("a") as seen:
                seen.write(job.id + "\\n")

@hookimpl
def core_register_sources():
    return [Source("web", [HttpTrigger("track", "/track"), HttpTrigger("identify", "/identify")])]

@hookimpl
def core_register_destinations():
    return [Destination("crm", [Record("notify", Schedule(interval="@every 1s"))]),
            Destination("archive", [Record("log", Schedule(interval="@every 1s"))])]

@hookimpl
def core_register_flows():
    return [Flow("all", "web", ["crm.notify"])]
"""


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_replay_into_a_new_action_loads_every_matching_event_once(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "core.toml").write_text(
        'app = "app.py"\nstore = "sqlite:///core.db"\npubsub = ""\nsupervisor = ""\nwanderer = ""\n'
        "[scheduler]\npoll_seconds = 0.1\n"
    )
    with core_start(tmp_path) as (gateway, admin), httpx.Client(headers=HEADERS["write"], timeout=30) as api:
        tracked, identified = ingest(gateway, 12), ingest(gateway, 4, "/identify")
        replayed = api.post(f"{admin}/store/events/replay",
                            json={"to": "archive.log", "where": {"names_in": "track"}, "reason": "backfill"})
        assert replayed.status_code == 200, replayed.text
        assert (replayed.json()["matched"], replayed.json()["created"]) == (12, 12)
        loaded = [tmp_path / f"log-{e}" for e in tracked]
        deadline = time.monotonic() + 30
        while not all(p.exists() for p in loaded):
            assert time.monotonic() < deadline, f"not loaded: {[p.name for p in loaded if not p.exists()]}"
            time.sleep(0.05)
        backlog = f"{admin}/destinations/archive/actions/log"
        while api.get(backlog).json()["backlog"]:
            assert time.monotonic() < deadline, api.get(backlog).json()
            time.sleep(0.05)
        time.sleep(1.5)  # more scheduled passes of archive.log: none may load a job again
        assert {p.name: len(_lines(p)) for p in loaded} == {p.name: 1 for p in loaded}
        assert not any((tmp_path / f"log-{e}").exists() for e in identified), "replayed an event left out"
        jobs = api.get(f"{admin}/store/jobs", params={"actions_in": "archive.log", "limit": 100}).json()["jobs"]
        assert sorted(j["event_id"] for j in jobs) == sorted(tracked)
        assert {j["status"] for j in jobs} == {"succeeded"}
