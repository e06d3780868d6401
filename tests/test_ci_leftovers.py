"""``.ci/leftovers.py``: a restarted service and a leaked process fail the check, on throwaway
servers of the test's own (never the machine's shared services)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.testing import ServerProcess, free_port

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "leftovers.py"

#: A TCP server; on SIGUSR1 it closes its listening socket and opens a new one on the same port
#: (what ``rabbitmqctl stop_app`` / ``start_app`` do inside the broker's process).
SERVER = """
import signal, socket, sys, threading
port = int(sys.argv[1])
def listen():
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock
current = [listen()]
def reopen(signum, frame):
    current[0].close()
    current[0] = listen()
signal.signal(signal.SIGUSR1, reopen)
threading.Event().wait()
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    with ServerProcess([sys.executable, "-c", SERVER, str(port)], port, log=tmp_path / "server.log") as running:
        yield running


def check(tmp_path: Path, port: int, *, mark: str | None = None) -> tuple[int, str]:
    """Run ``check`` against the snapshot in ``tmp_path``; its exit status and error output."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "check", str(tmp_path / "before.json"), f"--port=fake={port}",
         *([f"--mark={mark}"] if mark else [])],
        capture_output=True, text=True, timeout=60, check=False,
    )
    return done.returncode, done.stdout + done.stderr


def snapshot(tmp_path: Path, port: int, name: str = "before.json") -> dict[str, object]:
    """Run ``snapshot`` into ``tmp_path / name``; what it recorded of the throwaway server."""
    subprocess.run([sys.executable, str(SCRIPT), "snapshot", str(tmp_path / name), f"--port=fake={port}"],
                   check=True, capture_output=True, timeout=60)
    taken: dict[str, dict[str, object]] = json.loads((tmp_path / name).read_text())
    return taken.get("fake", {})


def test_an_untouched_service_passes(server: ServerProcess, tmp_path: Path) -> None:
    snapshot(tmp_path, server.port)
    status, output = check(tmp_path, server.port, mark="nothing-started")
    assert status == 0, output
    assert "unchanged" in output


def test_a_restarted_service_is_named(server: ServerProcess, tmp_path: Path) -> None:
    snapshot(tmp_path, server.port)
    pid = server.process.pid if server.process else None
    server.stop()
    server.start()
    status, output = check(tmp_path, server.port)
    assert status == 1
    assert f"fake on 127.0.0.1:{server.port} was restarted: pid {pid}" in output


def test_a_listener_reopened_in_the_same_process_is_named(
    server: ServerProcess, tmp_path: Path
) -> None:
    before = snapshot(tmp_path, server.port)
    assert server.process is not None
    server.process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while snapshot(tmp_path, server.port, "now.json").get("inodes", before["inodes"]) == before["inodes"]:
        assert time.monotonic() < deadline, "the throwaway server did not reopen its socket"
        time.sleep(0.05)
    status, output = check(tmp_path, server.port)
    assert status == 1
    assert "stopped and started again inside its process" in output


def test_a_stopped_service_is_named(server: ServerProcess, tmp_path: Path) -> None:
    snapshot(tmp_path, server.port)
    server.stop()
    status, output = check(tmp_path, server.port)
    assert status == 1
    assert f"fake on 127.0.0.1:{server.port} no longer answers" in output


def _spawn(mark: str) -> subprocess.Popen[bytes]:
    """A detached process carrying the session mark, as a server a test forgot would."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                            env={**os.environ, "CI_SESSION_MARK": mark}, start_new_session=True)


def test_a_leaked_process_is_named_and_stopped(
    server: ServerProcess, tmp_path: Path
) -> None:
    snapshot(tmp_path, server.port)
    leak, other = _spawn("s1:tests"), _spawn("s2:tests")  # s2: another session's, left alone
    try:
        status, output = check(tmp_path, server.port, mark="s1")
        assert status == 1
        assert f"process {leak.pid} (" in output and "was left running by the tests: stopped now" in output
        assert leak.wait(10) is not None
        assert other.poll() is None and str(other.pid) not in output
    finally:
        for process in (leak, other):
            process.kill()
            process.wait(10)


def test_a_service_helper_of_the_session_is_stopped_quietly(
    server: ServerProcess, tmp_path: Path
) -> None:
    snapshot(tmp_path, server.port)
    helper = _spawn("s3:services")
    try:
        status, output = check(tmp_path, server.port, mark="s3")
        assert status == 0, output
        assert f"stopping the session's service helper {helper.pid}" in output
        assert helper.wait(10) is not None
    finally:
        helper.kill()
        helper.wait(10)
