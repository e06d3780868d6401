"""Gateway and scheduler as separate processes (``core start gateway`` / ``core start
scheduler``) exchanging realtime jobs through SNS/SQS, going on while moto is down, and a
subscription trigger dead-lettering what it cannot read: the kit's end-to-end suite. And the
quickstart pipeline that ``core init`` writes delivering its realtime action through
SNS/SQS between two processes, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from core.testing import QUICKSTART_APP, DeadLetterEndToEndSuite, Deployment, Outage

from core_plugin_aws.pubsub import AwsPubSub

pytestmark = pytest.mark.slow


def group_exists(pubsub_url: str, topic: str, group: str) -> bool:
    """Whether the queue of ``group`` on ``topic`` exists and is subscribed to its SNS topic
    (SNS delivers what is published from then on to it)."""

    async def check() -> bool:
        adapter = AwsPubSub(pubsub_url)
        await adapter.open()
        try:
            return await adapter.group_exists(topic, group)
        finally:
            await adapter.close()

    return asyncio.run(check())


class TestEndToEnd(DeadLetterEndToEndSuite):
    broker = "AWS SNS/SQS"

    @pytest.fixture
    def pubsub_url(self, aws_url: str) -> str:
        return aws_url

    @pytest.fixture
    def broker_outage(self, aws_url: str, moto_stopped: Callable[[], AbstractContextManager[None]]) -> Outage:
        return aws_url, moto_stopped

    def group_exists(self, pubsub_url: str, topic: str, group: str) -> bool:
        return group_exists(pubsub_url, topic, group)


def test_the_quickstart_delivers_its_realtime_action_through_sns_and_sqs(tmp_path: Path, aws_url: str) -> None:
    """The quickstart's ``logger.log`` is realtime: with the realtime poll once an hour, only
    SNS/SQS can bring its jobs from the gateway process to the scheduler process."""
    settings = {"scheduler": {"poll_seconds": 3600}, "options.warehouse": {"url": "http://127.0.0.1:9/none"}}
    with Deployment(tmp_path, QUICKSTART_APP.read_text(), pubsub=aws_url, settings=settings) as running:
        running.start_apart(lambda: group_exists(aws_url, "core.jobs", "core.scheduler"),
                            "the scheduler's queue on AWS SNS/SQS")
        events = running.post("/webhooks/orders", *({"context": {}, "data": {"order": n}} for n in range(5)))

        def logged() -> bool:
            jobs = [j for j in running.jobs() if j["action"] == "log" and j["event_id"] in events]
            return len(jobs) == len(events) and all(j["status"] == "succeeded" for j in jobs)

        running.wait_until(logged, "every order's logger.log job to succeed through SNS/SQS", timeout=60)
    scheduler_log = (tmp_path / "scheduler.log").read_text()
    assert all(event in scheduler_log for event in events), "the scheduler did not log the orders"
