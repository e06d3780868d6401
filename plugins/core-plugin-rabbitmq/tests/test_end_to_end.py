"""Gateway and scheduler as separate processes (``core start gateway`` / ``core start
scheduler``) exchanging realtime jobs through RabbitMQ, going on while RabbitMQ is down, and a
subscription trigger dead-lettering what it cannot read: the kit's end-to-end suite. The outage
runs on the session's own RabbitMQ node (``private_rabbitmq``), the rest on the shared broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager

import aio_pika
import pytest
from aio_pika.exceptions import ChannelNotFoundEntity
from core.testing import DeadLetterEndToEndSuite, Outage

from core_plugin_rabbitmq._options import RabbitOptions

pytestmark = pytest.mark.slow


class TestEndToEnd(DeadLetterEndToEndSuite):
    broker = "RabbitMQ"

    @pytest.fixture
    def pubsub_url(self, rabbitmq_url: str) -> str:
        return rabbitmq_url

    @pytest.fixture
    def broker_outage(
        self, private_rabbitmq_url: str, rabbitmq_stopped: Callable[[], AbstractContextManager[None]]
    ) -> Outage:
        return private_rabbitmq_url, rabbitmq_stopped

    def group_exists(self, pubsub_url: str, topic: str, group: str) -> bool:
        """Whether the queue of ``group`` on ``topic`` is declared (a passive declare succeeds):
        a queue keeps what is published once it exists."""
        options = RabbitOptions.parse(pubsub_url, {})

        async def check() -> bool:
            async with await aio_pika.connect(options.url) as connection:
                channel = await connection.channel()
                try:
                    await channel.declare_queue(options.queue(topic, group), passive=True)
                except ChannelNotFoundEntity:
                    return False
                return True

        return asyncio.run(check())
