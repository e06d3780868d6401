"""The broker goes away and comes back: publish fails fast meanwhile, nothing is lost after.

These tests stop the local NATS server (``start-stop-daemon``, root) and always start it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager

import pytest
from core.testing.pubsub import Inbox, ack_all, bodies
from hookspecs import Message, PubSubUnavailable

from core_plugin_nats.pubsub import NatsPubSub

pytestmark = pytest.mark.slow


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    box = Inbox(timeout=20.0, quiet=0.5)
    yield box
    await box.close()


async def publish_when_back(adapter: NatsPubSub, topic: str, message: Message, within: float = 20.0) -> None:
    """Publish, retrying on PubSubUnavailable until the broker is back (fails after ``within``)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            await adapter.publish(topic, [message])
            return
        except PubSubUnavailable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_publish_fails_while_nats_is_down_and_delivery_resumes_after(
    nats_url: str, inbox: Inbox, nats_stopped: Callable[[], AbstractContextManager[None]]
) -> None:
    adapter = NatsPubSub(nats_url, {})
    await adapter.open()
    try:
        inbox.follow(await adapter.subscribe("orders", group="billing"), "member")
        await adapter.publish("orders", [Message(b"before"), Message(b"held across the restart")])
        got = await inbox.take(2)
        held = next(d for _, d in got if d.message.body == b"held across the restart")
        await next(d for _, d in got if d.message.body == b"before").ack()
        with nats_stopped():
            with pytest.raises(PubSubUnavailable):
                await adapter.publish("orders", [Message(b"while down")])
            await held.ack()  # lost with the connection, or sent after it: either way at least once
        await publish_when_back(adapter, "orders", Message(b"after"))
        after = await inbox.take(1) + await inbox.quiet()
        await ack_all(after)
        assert b"after" in bodies(after)
        assert set(bodies(after)) <= {b"after", b"held across the restart"}, "only the unacked one may come again"
        assert b"while down" not in bodies(after)
    finally:
        await adapter.close()


async def test_an_adapter_opened_while_nats_is_down_connects_when_it_is_back(
    nats_url: str, inbox: Inbox, nats_stopped: Callable[[], AbstractContextManager[None]]
) -> None:
    adapter = NatsPubSub(nats_url + "&connect_timeout=0.5", {})
    try:
        with nats_stopped():
            with pytest.raises(PubSubUnavailable):
                await adapter.open()
            with pytest.raises(PubSubUnavailable):
                await adapter.publish("orders", [Message(b"lost to the schedule")])
        await publish_when_back(adapter, "orders", Message(b"no group yet: not kept"))
        inbox.follow(await adapter.subscribe("orders", group="billing"), "member")
        await adapter.publish("orders", [Message(b"first after start")])
        got = await inbox.take(1)
        await ack_all(got)
        assert bodies(got) == [b"first after start"]
    finally:
        await adapter.close()
