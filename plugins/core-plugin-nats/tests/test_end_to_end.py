"""Gateway and scheduler as separate processes (``core start gateway`` / ``core start
scheduler``) exchanging realtime jobs through NATS, going on while NATS is down, and a
subscription trigger dead-lettering what it cannot read: the kit's end-to-end suite. The outage
runs on the session's own NATS server (``private_nats``), the rest on the shared one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager

import nats
import pytest
from core.testing import DeadLetterEndToEndSuite, Outage
from nats.js.errors import NotFoundError

from core_plugin_nats._options import NatsOptions

pytestmark = pytest.mark.slow


class TestEndToEnd(DeadLetterEndToEndSuite):
    broker = "NATS"

    @pytest.fixture
    def pubsub_url(self, nats_url: str) -> str:
        return nats_url

    @pytest.fixture
    def broker_outage(
        self, private_nats_url: str, nats_stopped: Callable[[], AbstractContextManager[None]]
    ) -> Outage:
        return private_nats_url, nats_stopped

    def group_exists(self, pubsub_url: str, topic: str, group: str) -> bool:
        """Whether the durable consumer of ``group`` on ``topic`` exists (the stream keeps what
        is published once a group exists)."""
        options = NatsOptions.parse(pubsub_url, {})

        async def check() -> bool:
            nc = await nats.connect(list(options.servers))
            try:
                await nc.jetstream().consumer_info(options.stream, options.durable(topic, group))
            except NotFoundError:
                return False
            finally:
                await nc.close()
            return True

        return asyncio.run(check())
