"""Run ``core start admin`` as a real process on a project, and talk to it over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

#: A pipeline: an HTTP source, a destination with a failing action and a realtime one.
APP = """
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

class Insert(Action):
    name = "insert"
    schedule = Schedule(interval="@every 1h", max_retries=2)

class Notify(Action):
    name = "notify"
    schedule = Schedule(realtime=True)

@hookimpl
def core_register_sources():
    return [Source("web", [HttpTrigger("track", "/track")])]

@hookimpl
def core_register_destinations():
    return [Destination("warehouse", [Insert()]), Destination("crm", [Notify()])]

@hookimpl
def core_register_flows():
    return [Flow("web-to-warehouse", "web", ["warehouse.insert"])]
"""
READ, WRITE = "viewer:read:r3ad-s3cret", "ops:write:wr1te-s3cret"
HEADERS = {"read": {"Authorization": "Bearer r3ad-s3cret"}, "write": {"Authorization": "Bearer wr1te-s3cret"}}


def make_project(directory: Path, store: str = "sqlite:///core.db") -> Path:
    """A project in ``directory`` running :data:`APP` on ``store`` (no broker, no supervisor)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(APP)
    (directory / "core.toml").write_text(
        f'app = "app.py"\nstore = "{store}"\npubsub = ""\nsupervisor = ""\nwanderer = "{store}"\n'
    )
    return directory


def environment(plugins: str = "", **extra: str) -> dict[str, str]:
    """This environment without ``CORE_*`` variables, only ``plugins`` loaded, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
    return env | {"CORE_LOAD_PLUGINS": plugins, "CORE_ADMIN_PORT": "0"} | extra


@contextmanager
def running(directory: Path, *command: str, plugins: str = "", **env: str) -> Iterator[str]:
    """``core start admin`` (or ``command``) in ``directory``; yields the admin API's base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "start", *(command or ("admin",))],
        cwd=directory,
        env=environment(plugins, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    url = ""
    try:
        while not url:
            line = process.stdout.readline()
            if not line:
                raise AssertionError("core start exited before listening:\n" + "".join(seen))
            seen.append(line)
            found = re.search(r"(http://[\d.]+:\d+)/admin/api|listening on (http://[\d.]+:\d+)", line)
            if found and ("admin" in line or command in ((), ("admin",))):
                url = found.group(1) or found.group(2)
            if time.monotonic() > deadline:
                raise AssertionError("core start did not listen in time:\n" + "".join(seen))
        yield url.replace("0.0.0.0", "127.0.0.1") + "/admin/api"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def run_core(directory: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``core ARGS`` in ``directory``, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=directory,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def ingest(gateway: str, count: int, path: str = "/track") -> list[str]:
    """Post ``count`` events to the gateway's ``path``; their ids."""
    ids = []
    for n in range(count):
        response = httpx.post(f"{gateway}{path}", json={"data": {"n": n}}, timeout=10)
        assert response.status_code == 202, response.text
        ids.append(response.json()["event_id"])
    return ids


@contextmanager
def core_start(directory: Path, *service: str) -> Iterator[tuple[str, str]]:
    """``core start`` (gateway, scheduler, admin), or ``core start gateway`` (``service``), in
    ``directory``, with a read and a write token; the gateway's and the admin API's URLs (the
    admin API's is ``""`` for a lone gateway)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "start", *service, "--port", "0"],
        cwd=directory,
        env=environment(CORE_ADMIN_TOKEN=f"{READ},{WRITE}"),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    gateway = admin = ""
    seen = []
    try:
        while not gateway or (not service and not admin):
            line = process.stdout.readline()
            assert line, "core start exited:\n" + "".join(seen)
            seen.append(line)
            if found := re.search(r"admin API on (http://\S+/admin/api)", line):
                admin = found.group(1)
            elif found := re.search(r"listening on (http://\S+)", line):
                gateway = found.group(1)
        yield gateway, admin
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
