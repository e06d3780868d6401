"""Gateway and scheduler as separate processes (``core start gateway`` / ``core start
scheduler``) exchanging realtime jobs through Service Bus (the stand-in), going on while it is
down, a subscription trigger dead-lettering what it cannot read (the kit's end-to-end suite),
and the quickstart pipeline delivering its realtime action through Service Bus."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from conftest import VARIABLE
from core.testing import QUICKSTART_APP, DeadLetterEndToEndSuite, Deployment, Outage
from standin import StandIn

from core_plugin_azure._options import AzureOptions

pytestmark = pytest.mark.slow


class TestEndToEnd(DeadLetterEndToEndSuite):
    broker = "Azure Service Bus"

    @pytest.fixture(autouse=True)
    def _standin(self, standin: StandIn) -> None:
        self.standin = standin

    @pytest.fixture
    def pubsub_url(self, azure_url: str) -> str:
        return azure_url

    @pytest.fixture
    def broker_outage(self, azure_url: str, standin_stopped: Callable[[], AbstractContextManager[None]]) -> Outage:
        return azure_url, standin_stopped

    def deployment(self, directory: Path, pubsub: str, poll_seconds: float) -> Deployment:
        """The kit's deployment, with the connection string in the processes' environment (a
        Deployment passes no ``CORE_*`` variable on by itself)."""
        return Deployment(directory, pubsub=pubsub, settings={"scheduler": {"poll_seconds": poll_seconds}},
                          env={VARIABLE: self.standin.connection_string})

    def group_exists(self, pubsub_url: str, topic: str, group: str) -> bool:
        """Whether the subscription of ``group`` on ``topic`` exists on the stand-in (Service
        Bus keeps what is published from then on)."""
        options = AzureOptions.parse(pubsub_url, {}, environ={VARIABLE: self.standin.connection_string})
        return self.standin.has_subscription(options.topic_name(topic), options.subscription_name(group))


def test_the_quickstart_delivers_its_realtime_action_through_service_bus(
    tmp_path: Path, standin: StandIn, azure_url: str
) -> None:
    """The quickstart pipeline ``core init`` writes, as it is, gateway and scheduler apart, realtime through
    Service Bus alone (the realtime poll once an hour); both stop on SIGTERM, exit 0."""
    settings = {"scheduler": {"poll_seconds": 3600}}
    options = AzureOptions.parse(azure_url, {}, environ={VARIABLE: standin.connection_string})
    with Deployment(tmp_path, QUICKSTART_APP.read_text(), pubsub=azure_url, settings=settings,
                    env={VARIABLE: standin.connection_string}) as running:
        running.start_apart(lambda: standin.has_subscription(options.topic_name("core.jobs"),
                                                             options.subscription_name("core.scheduler")),
                            "the scheduler's subscription on the stand-in")
        events = running.post("/webhooks/orders", *({"context": {"ip": "203.0.113.9"}, "data": {"order": n}}
                                                   for n in range(5)))

        def logged(event: str) -> bool:
            return any(j["action"] == "log" and j["status"] == "succeeded" for j in running.jobs(event=event))

        for event in events:
            running.wait_until(lambda e=event: logged(e),  # type: ignore[misc]
                               f"the realtime logger.log job of {event} through Service Bus")
        assert running.jobs(status="executing") == []
    assert "SharedAccessKey" not in "".join(p.read_text() for p in tmp_path.glob("*.log"))
