"""A server of a test's own: a real broker or database process on a private port and data
directory, which the test may stop and start again without touching the machine's shared one.

Outage tests stop a server; on a machine whose services are shared (by other tests, other
sessions, other people) they must stop one they started themselves. :class:`ServerProcess`
starts a command in a process group of its own, waits until its port answers, and stops the
whole group (SIGTERM, then SIGKILL) on :meth:`~ServerProcess.stop`, on leaving a ``with`` block
and, as a last resort, when the interpreter exits; :meth:`~ServerProcess.stopped` is an outage
for a ``with`` block. From ``core-plugin-nats``'s tests::

    @pytest.fixture(scope="session")
    def private_nats(tmp_path_factory):
        directory = tmp_path_factory.mktemp("nats")
        port = free_port()
        command = ["nats-server", "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(directory / "js")]
        with ServerProcess(command, port, log=directory / "nats.log") as server:
            yield server
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A private server did not start or stop; the message says which and why (with its log)."""


def answers(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class ServerProcess:
    """``command`` run as a server listening on ``port`` of 127.0.0.1, its output in ``log``.

    :param env: the environment of the server (default: the caller's).
    :param start_timeout: the longest wait for the port to answer after a start.
    :param stop_timeout: how long a stop waits after SIGTERM before SIGKILL.
    """

    def __init__(
        self,
        command: Sequence[str],
        port: int,
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 20.0,
    ) -> None:
        self.command = list(command)
        self.port = port
        self.log = log
        self.env = dict(os.environ if env is None else env)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop)

    @property
    def address(self) -> str:
        """``127.0.0.1:port``."""
        return f"{HOST}:{self.port}"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log, for error messages."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def start(self) -> None:
        """Start the server and wait until its port answers; fails if the port is taken."""
        if self.process is not None:
            raise ServerError(f"{self.command[0]} on {self.address} is already started")
        if answers(self.port):
            raise ServerError(f"port {self.address} is taken: a private server needs a free port")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while not answers(self.port):
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                raise ServerError(f"{self.command[0]} exited with {code} before {self.address} answered; "
                                  f"its log {self.log}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"{self.command[0]}: nothing answers on {self.address} after "
                                  f"{self.start_timeout:.0f}s; its log {self.log}:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server's whole process group (SIGTERM, then SIGKILL) and wait for it; idempotent."""
        process, self.process = self.process, None
        if process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(self.stop_timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        _reap_group(process.pid, self.stop_timeout)

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """``with server.stopped():`` the outage of a ``BrokerOutageSuite``: the server is
        stopped for the block and always started again (same port, same data)."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _reap_group(pgid: int, timeout: float) -> None:
    """Wait until no process of group ``pgid`` is left (children the leader did not take along)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        if time.monotonic() > deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                return
            return
        time.sleep(0.05)
