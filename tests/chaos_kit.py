"""Helpers of the chaos tests (``nox -s chaos``): a scheduler project whose load is steered by a
file, the jobs read straight from its SQLite store, and the figures a test measured, printed
in pytest's terminal summary (and at once, with ``-s``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.builtin.sqlite.store import SQLiteStore
from core.testing.processes import Deployment
from hookspecs import Job, Page, Status, WhereJob

#: A scheduled batch action ``warehouse.export`` (``@every 1s``) whose load appends a line per
#: load to ``loads.log`` (``<time> start|done <job ids>``) and does what the file ``mode``
#: says: ``ok``; ``slow <s>`` (awaits); ``poison`` (raises for a queue holding the event
#: ``n == 3``); ``block <s>`` (``time.sleep``: blocks the event loop, first load only).
APP = """
import asyncio
import time
from pathlib import Path
from hookspecs import Action, Destination, Schedule, hookimpl

HERE = Path(__file__).parent

def note(what, queue):
    with (HERE / "loads.log").open("a") as out:
        out.write(f"{time.time():.6f} {what} {','.join(job.id for job in queue.jobs)}\\n")

class Export(Action):
    name = "export"
    schedule = Schedule(interval="@every 1s", max_retries=MAX_RETRIES)

    async def load(self, toolkit, queue):
        note("start", queue)
        mode, *arg = (HERE / "mode").read_text().split()
        if mode == "slow":
            await asyncio.sleep(float(arg[0]))
        elif mode == "poison" and any(job.data["n"] == 3 for job in queue.jobs):
            raise ValueError("poison event")
        elif mode == "block" and not (HERE / "blocked").exists():
            (HERE / "blocked").write_text("")
            time.sleep(float(arg[0]))
        note("done", queue)

@hookimpl
def core_register_destinations():
    return [Destination("warehouse", [Export()])]
"""


def deployment(directory: Path, mode: str, *, max_retries: int = 3, **scheduler: Any) -> Deployment:
    """A project in ``directory`` running :data:`APP` on SQLite, no broker, supervisor or wanderer."""
    (directory / "mode").parent.mkdir(parents=True, exist_ok=True)
    (directory / "mode").write_text(mode)
    settings = {"poll_seconds": 0.2, "lease_seconds": 30, "load_timeout": 20, "grace_seconds": 5, **scheduler}
    return Deployment(directory, APP.replace("MAX_RETRIES", str(max_retries)), pubsub="",
                      settings={"supervisor": "", "wanderer": "", "scheduler": settings})


async def open_store(directory: Path) -> SQLiteStore:
    """The project's store, opened (created if need be) from the test process."""
    store = SQLiteStore(f"sqlite:///{directory / 'core.db'}")
    await store.open()
    return store


async def jobs_of(store: SQLiteStore, *statuses: Status) -> list[Job]:
    """Every job, or those in ``statuses``."""
    where = WhereJob(page=Page(limit=1_000_000), status_in=list(statuses) if statuses else None)
    return await store.find_jobs(where)


def loads(directory: Path, what: str = "start") -> list[tuple[float, list[str]]]:
    """The loads noted in ``loads.log``: (time, job ids) of each ``start`` (or ``done``) line."""
    path = directory / "loads.log"
    found = []
    for line in path.read_text().splitlines() if path.exists() else []:
        parts = line.split()
        if len(parts) == 3 and parts[1] == what:
            found.append((float(parts[0]), parts[2].split(",")))
    return found


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` every 20 ms until true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:g}s for {what}", pytrace=False)
        time.sleep(0.02)


class _Summary:
    """A pytest plugin, registered by the first :func:`figures` fixture: the figures section."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.lines:
            terminalreporter.section("chaos figures")
            for line in self.lines:
                terminalreporter.write_line(line)


@pytest.fixture()
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``figures("what: value")`` prints a measured figure now and in the terminal summary."""
    manager = request.config.pluginmanager
    summary = manager.get_plugin("core-chaos-figures")
    if summary is None:
        summary = _Summary()
        manager.register(summary, "core-chaos-figures")
    name = request.node.name

    def record(line: str) -> None:
        summary.lines.append(f"{name}: {line}")
        print(f"[chaos] {name}: {line}")

    return record
