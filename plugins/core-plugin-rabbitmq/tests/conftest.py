"""Each test gets its own exchange; the queues of every test are deleted when the session ends.

The broker is ``CORE_TEST_RABBITMQ`` (default ``amqp://guest:guest@127.0.0.1:5672/``). No test
is skipped when it is down: the fixtures fail, loudly. :func:`rabbitmq_stopped` stops the
local RabbitMQ application for a test and always starts it again.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import aio_pika
import pytest

SERVER = os.environ.get("CORE_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672/")
_EXCHANGES: list[str] = []


@contextmanager
def _stopped() -> Iterator[None]:
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
    try:
        yield
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)


@pytest.fixture
def rabbitmq_stopped() -> Callable[[], AbstractContextManager[None]]:
    """``with rabbitmq_stopped():`` stops the local RabbitMQ application, then starts it again."""
    return _stopped


@pytest.fixture
def exchange() -> str:
    """An exchange name of this test alone (its queues are named after it)."""
    name = f"t_{secrets.token_hex(5)}"
    _EXCHANGES.append(name)
    return name


@pytest.fixture
def rabbitmq_url(exchange: str) -> str:
    """The adapter URL for this test's exchange."""
    return f"{SERVER}?exchange={exchange}&reconnect_wait=0.2"


@pytest.fixture(scope="session", autouse=True)
def _delete_test_queues() -> Iterator[None]:
    yield
    if _EXCHANGES:
        asyncio.run(_delete(_EXCHANGES))


async def _delete(exchanges: list[str]) -> None:
    listed = subprocess.run(
        ["rabbitmqctl", "list_queues", "--quiet", "--no-table-headers", "name"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.split()
    connection = await aio_pika.connect(SERVER)
    async with connection:
        channel = await connection.channel()
        for queue in listed:
            if queue.split(":", 1)[0] in exchanges:
                await channel.queue_delete(queue)
        for name in exchanges:
            await channel.exchange_delete(name)
