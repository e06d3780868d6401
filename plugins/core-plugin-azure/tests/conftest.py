"""The tests run against our Service Bus stand-in (:mod:`standin`, python-qpid-proton, not
Microsoft's), started once per session on a free port of 127.0.0.1 so that the outage tests may
stop and restart it, and driven by the real, unmodified azure-servicebus SDK.

Each test gets its own topic prefix. The connection string reaches the adapter the way it does
in production, through the environment variable ``CORE_AZURE_SERVICEBUS`` (set for the session,
and for the processes of the end-to-end tests). :func:`standin_stopped` stops the stand-in for a
block and always starts it again, on the same port, with what it had.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from core.testing import free_port
from standin import StandIn

#: The stand-in's lock duration in these tests: short, so that a dead member's messages come
#: back soon, long enough that renewals are needed and seen.
LOCK_SECONDS = 5.0
VARIABLE = "CORE_AZURE_SERVICEBUS"


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    """The session's stand-in process, its connection string in ``CORE_AZURE_SERVICEBUS``."""
    running = StandIn(free_port(), Path(tmp_path_factory.mktemp("standin")), lock_duration=LOCK_SECONDS)
    running.start()
    before = os.environ.get(VARIABLE)
    os.environ[VARIABLE] = running.connection_string
    try:
        yield running
    finally:
        running.stop()
        if before is None:
            os.environ.pop(VARIABLE, None)
        else:
            os.environ[VARIABLE] = before


@pytest.fixture
def standin_stopped(standin: StandIn) -> Callable[[], AbstractContextManager[None]]:
    """``with standin_stopped():`` stops the stand-in for the block, then starts it again."""

    @contextmanager
    def stopped() -> Iterator[None]:
        standin.stop()
        try:
            yield
        finally:
            standin.start()

    return stopped


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test alone."""
    return f"t{secrets.token_hex(5)}"


@pytest.fixture
def azure_url(standin: StandIn, prefix: str) -> str:
    """The adapter URL for this test's prefix on the session's stand-in."""
    return f"azure://?prefix={prefix}&reconnect_wait=0.2&reconnect_max=2&receive_batch=50"
