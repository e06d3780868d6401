"""Gateway and scheduler as separate processes (``core start gateway`` / ``core start
scheduler``) exchanging realtime jobs through NATS, and going on while NATS is down."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import nats
import pytest
from core.testing.processes import Deployment
from hookspecs import Message
from nats.js.errors import NotFoundError

from core_plugin_nats._options import NatsOptions
from core_plugin_nats.pubsub import NatsPubSub

pytestmark = pytest.mark.slow


def deployment(directory: Path, pubsub: str, poll_seconds: float) -> Deployment:
    """The recording app on ``pubsub``, its realtime poll every ``poll_seconds``."""
    return Deployment(directory, pubsub=pubsub, settings={"scheduler": {"poll_seconds": poll_seconds}})


def start(deployment: Deployment, pubsub: str) -> None:
    """Scheduler, then gateway: the stream keeps what is published once a group exists."""
    deployment.start_apart(lambda: _consumer_exists(pubsub, "core.jobs", "core.scheduler"), "the scheduler's consumer")


def _consumer_exists(pubsub: str, topic: str, group: str) -> bool:
    """Whether the durable consumer of ``group`` on ``topic`` exists."""
    options = NatsOptions.parse(pubsub, {})

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


def orders(count: int) -> list[dict[str, object]]:
    return [{"context": {}, "data": {"order": n}} for n in range(count)]


def test_realtime_jobs_go_from_the_gateway_process_to_the_scheduler_process(tmp_path: Path, nats_url: str) -> None:
    # The poll of realtime actions runs once an hour here: only the broker can bring the jobs.
    with deployment(tmp_path, nats_url, poll_seconds=3600) as running:
        start(running, nats_url)
        sent = set(running.post("/webhooks/orders", *orders(20)))
        running.wait_until(lambda: set(running.loaded()) >= sent, "the scheduler to load every job through NATS")


def test_while_nats_is_down_the_gateway_answers_202_and_the_schedule_delivers(
    tmp_path: Path, nats_url: str, nats_stopped: Callable[[], AbstractContextManager[None]]
) -> None:
    with deployment(tmp_path, nats_url, poll_seconds=0.5) as running:
        start(running, nats_url)
        sent = set(running.post("/webhooks/orders", *orders(5)))
        running.wait_until(lambda: set(running.loaded()) >= sent, "the jobs sent before the outage")
        with nats_stopped():
            during = set(running.post("/webhooks/orders", *orders(10)))
            running.wait_until(lambda: set(running.loaded()) >= during, "the schedule to deliver the outage's jobs")
        after = set(running.post("/webhooks/orders", *orders(5)))
        running.wait_until(lambda: set(running.loaded()) >= after, "the jobs sent after NATS came back")
    assert set(running.loaded()) == sent | during | after


async def _publish(url: str, topic: str, bodies: list[bytes]) -> None:
    adapter = NatsPubSub(url)
    await adapter.open()
    try:
        await adapter.publish(topic, [Message(body) for body in bodies])
    finally:
        await adapter.close()


async def _first_dead_letter(url: str, topic: str) -> Message:
    adapter = NatsPubSub(url)
    await adapter.open()
    try:
        deliveries = aiter(await adapter.subscribe(f"dead.{topic}", group="dead-letters"))
        delivery = await asyncio.wait_for(anext(deliveries), 30)
        await delivery.ack()
        return delivery.message
    finally:
        await adapter.close()


def test_a_subscription_trigger_makes_events_and_dead_letters_what_it_cannot_read(
    tmp_path: Path, nats_url: str
) -> None:
    url = nats_url + "&max_deliveries=2"
    with deployment(tmp_path, url, poll_seconds=3600) as running:
        start(running, url)
        running.wait_until(lambda: _consumer_exists(url, "orders.external", "core.feed.external"),
                              "the trigger's consumer")
        good = b'{"name": "order.created", "data": {"n": 1}}'
        asyncio.run(_publish(url, "orders.external", [good, b"not json"]))
        running.wait_until(lambda: len(running.loaded()) == 1, "the good message's event to be loaded")
        dead = asyncio.run(_first_dead_letter(url, "orders.external"))
        assert len(running.loaded()) == 1
    assert dead.body == b"not json"
    assert (dead.attributes["Core-Dead-Topic"], dead.attributes["Core-Dead-Group"]) == (
        "orders.external", "core.feed.external"
    )
    assert "message refused" in (tmp_path / "gateway.log").read_text()
