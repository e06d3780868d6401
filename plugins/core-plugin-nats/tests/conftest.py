"""Each test gets its own subject prefix, hence its own JetStream stream, deleted after it.

The server is ``CORE_TEST_NATS`` (default ``nats://127.0.0.1:4222``). No test is skipped when
it is down: the fixtures fail, loudly. That server is shared: no test stops it. The outage
tests run on :func:`private_nats`, a ``nats-server -js`` of the session's own (a free port, its
JetStream store under the session's temporary directory), started once on first use and
stopped when the session ends; :func:`nats_stopped` stops that server and starts it again.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager

import nats
import pytest
from core.testing import ServerProcess, free_port
from nats.js.errors import NotFoundError

SERVER = os.environ.get("CORE_TEST_NATS", "nats://127.0.0.1:4222")
NATS_BINARY = shutil.which("nats-server") or "/usr/sbin/nats-server"


@pytest.fixture(scope="session")
def private_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The session's own NATS server with JetStream (stopped at the end, pass or fail)."""
    directory = tmp_path_factory.mktemp("nats")
    port = free_port()
    command = [NATS_BINARY, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(directory / "js")]
    with ServerProcess(command, port, log=directory / "nats-server.log") as server:
        yield server


@pytest.fixture
def nats_stopped(private_nats: ServerProcess) -> Callable[[], AbstractContextManager[None]]:
    """``with nats_stopped():`` stops the private server for the block, then starts it again
    (same port, same JetStream store: streams and durable consumers survive)."""
    return private_nats.stopped


@pytest.fixture
def private_nats_url(private_nats: ServerProcess, prefix: str) -> str:
    """The adapter URL for this test's prefix on the private server (its store is temporary)."""
    return f"nats://{private_nats.address}?prefix={prefix}&reconnect_wait=0.2"


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
