"""Optional end-to-end suites for brokers: the gateway and the scheduler as separate
``core start`` processes (a :class:`~core.testing.processes.Deployment` of
:data:`~core.testing.processes.RECORDING_APP` on SQLite) exchanging realtime jobs through the
broker, going on while it is down, and a subscription trigger reading it.

- :class:`BrokerEndToEndSuite`: realtime jobs go from the gateway process to the scheduler
  process through the broker alone; while the broker is down the gateway still answers ``202``
  and the schedule delivers, and nothing is lost once it is back.
- :class:`DeadLetterEndToEndSuite` adds: a subscription trigger makes an event of a readable
  message and dead-letters the unreadable one (the ``dead.<topic>`` convention of
  :class:`~core.testing.broker.DeadLetterSuite`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import ClassVar

import pytest

from core.brokers import DEAD_GROUP, DEAD_TOPIC
from core.testing._base import create_adapter
from core.testing.processes import Deployment
from hookspecs import Message, PubSub

#: What ``broker_outage`` gives: the pub/sub URL to deploy with, and a callable returning a
#: context manager that stops the broker for its block and always starts it again.
Outage = tuple[str, Callable[[], AbstractContextManager[None]]]
#: The recording app's subscription trigger: its topic and consumer group.
FEED_TOPIC, FEED_GROUP = "orders.external", "core.feed.external"


def orders(count: int) -> list[dict[str, object]]:
    """``count`` order documents for ``POST /webhooks/orders``."""
    return [{"context": {}, "data": {"order": n}} for n in range(count)]


class BrokerEndToEndSuite:
    """Subclass it and override the fixtures ``pubsub_url`` and ``broker_outage``, and
    :meth:`group_exists`.

    :cvar broker: the broker's name, in messages.
    """

    broker: ClassVar[str] = "the broker"

    @pytest.fixture
    def pubsub_url(self) -> str:
        """The pub/sub URL of the broker under test (a prefix or namespace of this test alone)."""
        pytest.fail(f"{type(self).__name__} needs a fixture 'pubsub_url'", pytrace=False)

    @pytest.fixture
    def broker_outage(self, pubsub_url: str) -> Outage:
        """The URL to deploy with and a callable stopping the broker for a ``with`` block."""
        pytest.fail(f"{type(self).__name__} needs a fixture 'broker_outage'", pytrace=False)

    def group_exists(self, pubsub_url: str, topic: str, group: str) -> bool:
        """Whether the consumer ``group`` of ``topic`` exists on the broker, so that what is
        published from now on is kept for it. Processes are started once it is true."""
        return True

    def deployment(self, directory: Path, pubsub: str, poll_seconds: float) -> Deployment:
        """The recording app on ``pubsub``, its realtime poll every ``poll_seconds`` (not started)."""
        return Deployment(directory, pubsub=pubsub, settings={"scheduler": {"poll_seconds": poll_seconds}})

    def start(self, deployment: Deployment, pubsub: str) -> None:
        """The scheduler once it is, then the gateway once its subscription trigger is, in its group."""
        deployment.start_apart(lambda: self.group_exists(pubsub, "core.jobs", "core.scheduler"),
                               f"the scheduler's consumer group on {self.broker}")
        deployment.wait_until(lambda: self.group_exists(pubsub, FEED_TOPIC, FEED_GROUP),
                              f"the gateway's subscription trigger's consumer group on {self.broker}")

    def test_realtime_jobs_go_from_the_gateway_process_to_the_scheduler_process(
        self, tmp_path: Path, pubsub_url: str
    ) -> None:
        # The poll of realtime actions runs once an hour here: only the broker can bring the jobs.
        with self.deployment(tmp_path, pubsub_url, poll_seconds=3600) as running:
            self.start(running, pubsub_url)
            sent = set(running.post("/webhooks/orders", *orders(20)))
            running.wait_until(lambda: set(running.loaded()) >= sent,
                               f"the scheduler to load every job through {self.broker}")

    def test_while_the_broker_is_down_the_gateway_answers_202_and_the_schedule_delivers(
        self, tmp_path: Path, broker_outage: Outage
    ) -> None:
        pubsub, broker_stopped = broker_outage
        with self.deployment(tmp_path, pubsub, poll_seconds=0.5) as running:
            self.start(running, pubsub)
            sent = set(running.post("/webhooks/orders", *orders(5)))
            running.wait_until(lambda: set(running.loaded()) >= sent, "the jobs sent before the outage")
            with broker_stopped():
                during = set(running.post("/webhooks/orders", *orders(10)))
                running.wait_until(lambda: set(running.loaded()) >= during, "the schedule to deliver the outage's jobs")
            after = set(running.post("/webhooks/orders", *orders(5)))
            running.wait_until(lambda: set(running.loaded()) >= after, f"the jobs sent after {self.broker} came back")
        assert set(running.loaded()) == sent | during | after


async def _publish(url: str, topic: str, bodies: list[bytes]) -> None:
    adapter: PubSub = create_adapter("pubsub", url)
    await adapter.open()
    try:
        await adapter.publish(topic, [Message(body) for body in bodies])
    finally:
        await adapter.close()


async def _first_dead_letter(url: str, topic: str) -> Message:
    adapter: PubSub = create_adapter("pubsub", url)
    await adapter.open()
    try:
        deliveries = aiter(await adapter.subscribe(f"dead.{topic}", group="dead-letters"))
        delivery = await asyncio.wait_for(anext(deliveries), 30)
        await delivery.ack()
        return delivery.message
    finally:
        await adapter.close()


class DeadLetterEndToEndSuite(BrokerEndToEndSuite):
    """:class:`BrokerEndToEndSuite` and a subscription trigger that dead-letters what it cannot
    read (after ``max_deliveries`` deliveries, an adapter option set in the URL query).

    :cvar dead_topic_attribute: the dead letter's attribute holding the original topic.
    :cvar dead_group_attribute: the dead letter's attribute holding the group that gave up on it.
    """

    dead_topic_attribute: ClassVar[str] = DEAD_TOPIC
    dead_group_attribute: ClassVar[str] = DEAD_GROUP

    def test_a_subscription_trigger_makes_events_and_dead_letters_what_it_cannot_read(
        self, tmp_path: Path, pubsub_url: str
    ) -> None:
        url = pubsub_url + ("&" if "?" in pubsub_url else "?") + "max_deliveries=2"
        with self.deployment(tmp_path, url, poll_seconds=3600) as running:
            self.start(running, url)
            good = b'{"name": "order.created", "data": {"n": 1}}'
            asyncio.run(_publish(url, FEED_TOPIC, [good, b"not json"]))
            running.wait_until(lambda: len(running.loaded()) == 1, "the good message's event to be loaded")
            dead = asyncio.run(_first_dead_letter(url, FEED_TOPIC))
            assert len(running.loaded()) == 1
        assert dead.body == b"not json"
        assert (dead.attributes[self.dead_topic_attribute], dead.attributes[self.dead_group_attribute]) == (
            FEED_TOPIC, FEED_GROUP
        )
        assert "message refused" in (tmp_path / "gateway.log").read_text()
