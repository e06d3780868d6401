"""``core start`` as a real process: one line on start, real HTTP in, realtime delivery by the
scheduler in the same process, SIGTERM -> exit 0; an init error -> exit 2 with its message."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

APP = """
from pathlib import Path
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

HERE = Path(__file__).parent

class Broken(Source):
    async def init(self, toolkit):
        raise RuntimeError("the API key is missing")

class Note(Action):
    name = "note"
    schedule = Schedule(realtime=True)

    async def load(self, toolkit, queue):
        for job in queue.jobs:
            (HERE / f"loaded-{job.id}").write_text(str(job.data))

@hookimpl
def core_register_sources():
    sources = [Source("shop", [HttpTrigger("orders", "/webhooks/orders")])]
    if (HERE / "break").exists():
        sources.append(Broken("broken", []))
    return sources

@hookimpl
def core_register_destinations():
    return [Destination("notes", [Note()])]

@hookimpl
def core_register_flows():
    return [Flow("orders", source="shop", actions=["notes.note"])]
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "core.toml").write_text(
        'app = "app.py"\nstore = "sqlite:///.core/core.db"\npubsub = "memory://"\nsupervisor = "local://"\n'
        'wanderer = ""\n[scheduler]\npoll_seconds = 0.2\n'
    )
    (tmp_path / ".core").mkdir()
    return tmp_path


def core(directory: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
    env |= {"CORE_LOAD_PLUGINS": "", "CORE_ADMIN_PORT": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "core", *args], cwd=directory, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def line_matching(process: subprocess.Popen[str], pattern: str, timeout: float = 30) -> re.Match[str]:
    """Read stdout until a line matches ``pattern``; fail with stderr if the process ends first."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            found = re.search(pattern, line)
            if found:
                return found
            if not line and process.poll() is not None:
                break
    process.kill()
    _, err = process.communicate()
    raise AssertionError(f"no line matching {pattern!r}; stderr:\n{err}")


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, err


def test_core_start_runs_gateway_and_scheduler_and_stops_on_sigterm(tmp_path: Path) -> None:
    process = core(project(tmp_path), "start", "--port", "0")
    found = line_matching(process, r"core gateway\+scheduler\+admin listening on (http://127\.0\.0\.1:\d+) · "
                                   r"store sqlite:///\.core/core\.db · pubsub memory:// · "
                                   r"supervisor [a-z]+ · 1 source, 1 flow, 1 destination")
    url = found.group(1)
    response = httpx.post(f"{url}/webhooks/orders", json={"data": {"id": 42}}, timeout=10)
    assert response.status_code == 202
    [job_id] = response.json()["job_ids"]
    loaded = tmp_path / f"loaded-{job_id}"
    deadline = time.monotonic() + 20
    while not loaded.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert loaded.read_text() == "{'id': 42}"  # delivered in realtime by the scheduler
    code, err = stop(process)
    assert code == 0, err
    assert "stopping" in err and "stopped" in err and "Traceback" not in err


def test_core_start_gateway_alone(tmp_path: Path) -> None:
    process = core(project(tmp_path), "start", "gateway", "--port", "0", "--host", "127.0.0.1")
    url = line_matching(process, r"core gateway listening on (http://\S+) ").group(1)
    assert httpx.get(f"{url}/_health", timeout=10).json()["status"] == "ok"
    code, err = stop(process)
    assert code == 0, err


def test_an_init_error_exits_2_with_the_message(tmp_path: Path) -> None:
    directory = project(tmp_path)
    (directory / "break").write_text("")
    process = core(directory, "start", "gateway", "--port", "0")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "source 'broken' failed to start" in err and "the API key is missing" in err
    assert "Traceback" not in err


def test_a_port_in_use_exits_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = core(project(tmp_path), "start", "gateway", "--port", str(port))
        _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


def test_core_start_scheduler_alone(tmp_path: Path) -> None:
    process = core(project(tmp_path), "start", "scheduler")
    line_matching(process, r"core scheduler running · store sqlite:///\.core/core\.db · pubsub memory://")
    code, err = stop(process)
    assert code == 0, err


def test_start_scheduler_help_offers_no_gateway_options() -> None:
    """Issue 22, item 10: the scheduler listens on nothing, so it takes no --host/--port."""
    from click.testing import CliRunner

    from core.cli import main

    result = CliRunner().invoke(main, ["start", "scheduler", "--help"])
    assert result.exit_code == 0 and "--host" not in result.stdout and "--port" not in result.stdout
    assert "gateway" not in result.stdout.lower().replace("listens on no port", "")
    assert "--port" in CliRunner().invoke(main, ["start", "gateway", "--help"]).stdout


CALLBACK_APP = """
import asyncio
from pathlib import Path

import httpx
from hookspecs import Action, Destination, Flow, HttpTrigger, Schedule, Source, hookimpl

HERE = Path(__file__).parent


class CallBack(Action):
    '''Like the quickstart's warehouse: its load posts to a route of this very gateway.'''

    name = "call"
    schedule = Schedule(realtime=True)

    async def load(self, toolkit, queue):
        (HERE / "loading").write_text("")
        await asyncio.sleep(1.5)  # the stop signal arrives here
        url = (HERE / "url").read_text()
        async with httpx.AsyncClient() as client:
            (await client.post(url + "/echo", json={})).raise_for_status()


@hookimpl
def core_register_sources():
    return [Source("shop", [HttpTrigger("orders", "/webhooks/orders")])]


@hookimpl
def core_register_destinations():
    return [Destination("back", [CallBack()])]


@hookimpl
def core_register_flows():
    return [Flow("orders", source="shop", actions=["back.call"])]


@hookimpl
def core_gateway_routes():
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo(request):
        return JSONResponse({})

    return [Route("/echo", echo, methods=["POST"])]
"""


def test_a_stop_during_a_load_that_calls_this_gateway_loses_no_attempt(tmp_path: Path) -> None:
    """Issue 22, item 10: the scheduler stops before the gateway, so a clean Ctrl-C during such a
    load lets it finish (``succeeded``) instead of failing it and spending a retry."""
    directory = project(tmp_path)
    (directory / "app.py").write_text(CALLBACK_APP)
    process = core(directory, "start", "--port", "0")
    url = line_matching(process, r"listening on (http://127\.0\.0\.1:\d+) ").group(1)
    (directory / "url").write_text(url)
    [job_id] = httpx.post(f"{url}/webhooks/orders", json={"data": {}}, timeout=10).json()["job_ids"]
    deadline = time.monotonic() + 20
    while not (directory / "loading").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    shown = subprocess.run(
        [sys.executable, "-m", "core", "jobs", "show", job_id], cwd=directory, capture_output=True, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("CORE_")} | {"CORE_LOAD_PLUGINS": ""},
    ).stdout
    assert "status:      succeeded (attempt 1)" in shown, shown + err
