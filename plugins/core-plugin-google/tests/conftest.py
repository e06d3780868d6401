"""The tests run against an official Pub/Sub emulator of their own (:mod:`emulator`), started
once per session on a free port of 127.0.0.1, so that the outage tests may stop and restart it.

Each test gets its own topic prefix. No test is skipped when the emulator is missing: the
session fixture fails, loudly. :func:`emulator_stopped` stops the emulator for a block and
always starts it again, on the same port, empty (the emulator keeps nothing).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from core.testing import free_port
from emulator import Emulator

PROJECT = "core-tests"


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The session's emulator process."""
    running = Emulator(free_port(), Path(tmp_path_factory.mktemp("emulator")) / "emulator.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def emulator_stopped(emulator: Emulator) -> Callable[[], AbstractContextManager[None]]:
    """``with emulator_stopped():`` stops the emulator for the block, then starts it again."""

    @contextmanager
    def stopped() -> Iterator[None]:
        emulator.stop()
        try:
            yield
        finally:
            emulator.start()

    return stopped


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test alone."""
    return f"t{secrets.token_hex(5)}"


@pytest.fixture
def google_url(emulator: Emulator, prefix: str) -> str:
    """The adapter URL for this test's prefix on the session's emulator."""
    return f"google://{PROJECT}?emulator_host={emulator.host}&prefix={prefix}&reconnect_wait=0.2&reconnect_max=2"
