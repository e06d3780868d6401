"""The tests run against a moto server of their own (:mod:`moto_server`), started once per
session on a free port of 127.0.0.1, so that the outage tests may stop and restart it.

Each test gets its own name prefix. No test is skipped when moto is missing: the session
fixture fails, loudly. :func:`moto_stopped` stops the server for a block and always starts it
again, on the same port, empty (moto keeps nothing). The credentials are moto's dummy ones, in
the environment (the standard chain reads them there; the processes of the end-to-end tests
inherit them), and the instance metadata service is never asked.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from core.testing import free_port
from moto_server import MotoServer

REGION = "us-east-1"
#: moto's dummy credentials, for the standard chain (never real ones).
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
})
for _variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE"):
    os.environ.pop(_variable, None)


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """The session's moto server process."""
    running = MotoServer(free_port(), Path(tmp_path_factory.mktemp("moto")) / "moto.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def moto_stopped(moto: MotoServer) -> Callable[[], AbstractContextManager[None]]:
    """``with moto_stopped():`` stops the moto server for the block, then starts it again."""

    @contextmanager
    def stopped() -> Iterator[None]:
        moto.stop()
        try:
            yield
        finally:
            moto.start()

    return stopped


@pytest.fixture
def prefix() -> str:
    """A name prefix of this test alone."""
    return f"t{secrets.token_hex(5)}"


@pytest.fixture
def aws_url(moto: MotoServer, prefix: str) -> str:
    """The adapter URL for this test's prefix on the session's moto server."""
    return (f"aws://?region={REGION}&endpoint_url={moto.url}&prefix={prefix}"
            "&reconnect_wait=0.2&reconnect_max=2&wait_seconds=1")
