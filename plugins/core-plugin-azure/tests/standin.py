"""A wire-level stand-in for Azure Service Bus, written by us (not Microsoft's), for tests.

It speaks AMQP 1.0 with python-qpid-proton and serves what the unmodified ``azure-servicebus``
SDK puts on the wire when its connection string says ``UseDevelopmentEmulator=true`` (plain
TCP, no TLS): SASL ANONYMOUS or PLAIN, CBS ``put-token`` on ``$cbs`` (every token is accepted:
no SAS validation), queues, topics with subscriptions (``topic/Subscriptions/sub``), peek-lock
with lock tokens (the delivery tag and ``x-opt-lock-token``), the dispositions complete
(accepted), abandon (modified), dead-letter (rejected) and their confirmation, delivery counts
and ``MaxDeliveryCount`` into the ``$DeadLetterQueue`` sub-queue, lock expiry and the
``$management`` operations ``com.microsoft:renew-lock`` and ``com.microsoft:update-disposition``.

Entities need no management API: a topic exists once a sender attaches to it, a subscription
once a receiver attaches to it (``--queue NAME`` declares a queue). On SIGTERM it writes its
entities and messages to ``--state`` and reads them back at start, so a restart keeps them,
as Service Bus does (locks do not survive: locked messages are available again).

    python standin.py --port 5673 [--state FILE] [--lock-duration 30] [--max-delivery-count 10]

This module, the entry point and the :class:`StandIn` process wrapper, uses the standard
library only (``.ci/services.py`` loads it before python-qpid-proton is installed); the broker
itself is the :mod:`_standin` package beside it, imported by :func:`main`.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"
#: What the stand-in prints once it listens.
READY = "stand-in listening"
#: A connection string for the SDK (any key is accepted; none is checked).
KEY_NAME, KEY = "RootManageSharedAccessKey", "c3RhbmQtaW4ta2V5LW5vdC1hLXNlY3JldA=="


def connection_string(port: int, host: str = HOST) -> str:
    """The SDK's connection string for a stand-in on ``host:port`` (plain AMQP)."""
    return (f"Endpoint=sb://{host}:{port};SharedAccessKeyName={KEY_NAME};SharedAccessKey={KEY};"
            "UseDevelopmentEmulator=true")


class StandInError(RuntimeError):
    """The stand-in did not start; the message says why."""


def answers(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class StandIn:
    """The stand-in as a process of our own on ``port``: started, stopped, started again with
    what it had (``state``), logging to ``log``."""

    def has_subscription(self, topic: str, subscription: str) -> bool:
        """Whether the stand-in has made (or been started with) that subscription."""
        line = f"created subscription {topic}/Subscriptions/{subscription}\n"
        return self.log.exists() and line.lower() in self.log.read_text(errors="replace").lower()

    def __init__(self, port: int, directory: Path, *, lock_duration: float = 30.0,
                 max_delivery_count: int = 10, python: str = sys.executable) -> None:
        self.port = port
        self.directory = directory
        self.log = directory / "standin.log"
        self.state = directory / "standin.json"
        self.lock_duration = lock_duration
        self.max_delivery_count = max_delivery_count
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)

    def start(self, timeout: float = 30.0) -> None:
        """Start it and wait until it listens."""
        if answers(self.port):
            raise StandInError(f"port {self.port} of {HOST} is taken: choose another")
        self.directory.mkdir(parents=True, exist_ok=True)
        start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [self.python, str(Path(__file__).resolve()), "--port", str(self.port), "--state", str(self.state),
                 "--lock-duration", str(self.lock_duration), "--max-delivery-count", str(self.max_delivery_count)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not (READY in self.log.read_text(errors="replace")[start:] and answers(self.port)):
            if self.process.poll() is not None:
                raise StandInError(f"the stand-in exited with {self.process.returncode}; see {self.log}")
            if time.monotonic() > deadline:
                self.stop()
                raise StandInError(f"the stand-in did not listen within {timeout:.0f}s; see {self.log}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it (SIGTERM: it saves its state), and wait for the port to close."""
        process, self.process = self.process, None
        if process is None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + 10
        while answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, default=None, help="where to keep entities and messages across restarts")
    parser.add_argument("--lock-duration", type=float, default=30.0, help="seconds a peek-lock lasts (LockDuration)")
    parser.add_argument("--max-delivery-count", type=int, default=10, help="MaxDeliveryCount of every entity")
    parser.add_argument("--queue", action="append", default=[], help="declare a queue (else names are topics)")
    args = parser.parse_args()
    from _standin.server import serve  # python-qpid-proton: only in the stand-in's own process

    serve(args.port, args.state, args.lock_duration, args.max_delivery_count, args.queue, HOST, READY)
    return 0


if __name__ == "__main__":
    sys.exit(main())
