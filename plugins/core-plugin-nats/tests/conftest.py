"""Each test gets its own subject prefix, hence its own JetStream stream, deleted after it.

The server is ``CORE_TEST_NATS`` (default ``nats://127.0.0.1:4222``). No test is skipped when
it is down: the fixtures fail, loudly. :func:`nats_stopped` stops the local server for a
test and always starts it again.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import nats
import pytest
from nats.js.errors import NotFoundError

SERVER = os.environ.get("CORE_TEST_NATS", "nats://127.0.0.1:4222")
NATS_BINARY = "/usr/sbin/nats-server"
START = [
    "start-stop-daemon", "--start", "--oknodo", "--background", "--exec", NATS_BINARY, "--",
    "-a", "127.0.0.1", "-p", "4222", "-js", "-sd", "/var/lib/nats-server", "-l", "/var/log/nats-server.log",
]
STOP = ["start-stop-daemon", "--stop", "--oknodo", "--retry", "TERM/10/KILL/5", "--exec", NATS_BINARY]


def _port_open(port: int = 4222) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_port(open_: bool, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while _port_open() != open_:
        if time.monotonic() > end:
            raise RuntimeError(f"NATS port 4222 did not {'open' if open_ else 'close'} within {deadline}s")
        time.sleep(0.05)


@contextmanager
def _stopped() -> Iterator[None]:
    """Stop the local NATS server for the block; it is started again whatever happens."""
    subprocess.run(STOP, check=True, capture_output=True)
    try:
        _wait_port(False)
        yield
    finally:
        subprocess.run(START, check=True, capture_output=True)
        _wait_port(True)


@pytest.fixture
def nats_stopped() -> Callable[[], AbstractContextManager[None]]:
    """``with nats_stopped():`` stops the local NATS server for the block, then starts it again."""
    return _stopped


@pytest.fixture
def prefix() -> str:
    """A subject prefix of this test alone."""
    return f"t_{secrets.token_hex(5)}"


@pytest.fixture
async def nats_url(prefix: str) -> AsyncIterator[str]:
    """The adapter URL for this test's prefix; its stream is deleted after the test."""
    yield f"{SERVER}?prefix={prefix}&reconnect_wait=0.2"
    nc = await nats.connect(SERVER)
    try:
        await nc.jetstream().delete_stream(prefix.upper())
    except NotFoundError:
        pass
    finally:
        await nc.close()
