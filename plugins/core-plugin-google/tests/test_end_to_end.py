"""Gateway and scheduler as separate processes (``core start gateway`` / ``core start
scheduler``) exchanging realtime jobs through Pub/Sub, going on while the emulator is down,
and a subscription trigger dead-lettering what it cannot read: the kit's end-to-end suite."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from core.testing import DeadLetterEndToEndSuite, Outage

from core_plugin_google.pubsub import GooglePubSub

pytestmark = pytest.mark.slow


class TestEndToEnd(DeadLetterEndToEndSuite):
    broker = "Google Pub/Sub"

    @pytest.fixture
    def pubsub_url(self, google_url: str) -> str:
        return google_url

    @pytest.fixture
    def broker_outage(self, google_url: str, emulator_stopped: Callable[[], AbstractContextManager[None]]) -> Outage:
        return google_url, emulator_stopped

    def group_exists(self, pubsub_url: str, topic: str, group: str) -> bool:
        """Whether the subscription of ``group`` on ``topic`` exists (Pub/Sub keeps what is
        published from then on)."""

        async def check() -> bool:
            adapter = GooglePubSub(pubsub_url)
            await adapter.open()
            try:
                return await adapter.subscription_exists(topic, group)
            finally:
                await adapter.close()

        return asyncio.run(check())
