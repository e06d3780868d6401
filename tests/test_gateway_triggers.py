"""Cron, CDC and subscription triggers of a running gateway, on the real SQLite store, the
memory pub/sub and the local supervisor."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from core.errors import PipelineError
from core.gateway import Gateway
from hookspecs import (
    CdcTrigger,
    CronTrigger,
    Emit,
    EventDraft,
    Flow,
    Message,
    Source,
    SubscriptionTrigger,
    Toolkit,
    WhereEvent,
)
from tests.gateway_kit import eventually, opened, serving, shop


async def test_a_cron_trigger_fires_and_survives_extract_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    async def pull(toolkit: Toolkit) -> Sequence[EventDraft]:
        calls.append(toolkit.service)
        if len(calls) == 1:
            raise ConnectionError("upstream down")
        return [EventDraft(data={"tick": len(calls)}, name="polled")]

    _, destinations, _ = shop()
    source = Source("poller", triggers=[CronTrigger("every-second", "@every 1s", pull)])
    flows = [Flow("polls", source="poller", actions=["sink.keep"])]
    async with opened(tmp_path, [source], destinations, flows) as runtime, serving(runtime):

        async def polled() -> list[object]:
            return await runtime.store.find_events(WhereEvent(sources=["poller"]))

        [event, *_] = await eventually(polled)
    assert event.name == "polled" and event.data == {"tick": 2}
    assert calls[0] == "gateway"
    assert "extract failed" in caplog.text and "upstream down" in caplog.text


async def test_a_cron_trigger_runs_on_the_node_holding_its_lease(tmp_path: Path) -> None:
    fired = asyncio.Event()

    async def pull(toolkit: Toolkit) -> Sequence[EventDraft]:
        fired.set()
        return []

    source = Source("poller", triggers=[CronTrigger("tick", "@every 1s", pull)])
    async with opened(tmp_path, [source]) as runtime:
        assert runtime.supervisor is not None
        other = await runtime.supervisor.acquire("trigger:poller/tick", owner="another-node", ttl=60)
        assert other is not None
        async with serving(runtime):
            await asyncio.sleep(1.5)  # the other node holds the lease: no tick here
            assert not fired.is_set()
            await runtime.supervisor.release(other)
            await asyncio.wait_for(fired.wait(), 10)  # this node takes over


async def test_cdc_emit_returns_ids_after_the_commit_and_shutdown_is_clean(tmp_path: Path) -> None:
    seen: list[str] = []
    emitted: list[list[str]] = []

    async def listen(toolkit: Toolkit, emit: Emit) -> None:
        emitted.append(await emit([EventDraft(data={"row": 1}, name="insert"),
                                   EventDraft(data={"row": 2}, name="update")]))
        seen.append("listening")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    class Db(Source):
        async def shutdown(self, toolkit: Toolkit) -> None:
            seen.append("source shutdown")

    class Changes(CdcTrigger):
        async def shutdown(self, toolkit: Toolkit) -> None:
            seen.append("trigger shutdown")

    source = Db("db", triggers=[Changes("changes", listen)])
    async with opened(tmp_path, [source]) as runtime:
        async with serving(runtime):
            await eventually(lambda: asyncio.sleep(0, result=emitted))
            [ids] = emitted
            for event_id in ids:  # each id is readable as soon as emit returned it
                event = await runtime.store.get_event(event_id)
                assert event is not None and event.source == "db"
            assert seen == ["listening"]
        assert seen == ["listening", "cancelled", "trigger shutdown", "source shutdown"]


async def test_a_failing_cdc_listener_is_restarted(tmp_path: Path) -> None:
    runs: list[int] = []

    async def listen(toolkit: Toolkit, emit: Emit) -> None:
        runs.append(1)
        if len(runs) == 1:
            raise ConnectionResetError("replication slot dropped")
        await emit([EventDraft(data="after restart")])
        await asyncio.Event().wait()

    source = Source("db", triggers=[CdcTrigger("changes", listen)])
    async with opened(tmp_path, [source]) as runtime, serving(runtime):

        async def stored() -> list[object]:
            return await runtime.store.find_events(WhereEvent(sources=["db"]))

        [event] = await eventually(stored)
        assert event.data == "after restart" and len(runs) == 2


async def test_a_subscription_trigger_acks_after_the_commit_and_nacks_what_it_cannot_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = Source("bus", triggers=[SubscriptionTrigger("orders", "shop.orders")])
    _, destinations, _ = shop()
    flows = [Flow("bus-orders", source="bus", actions=["sink.keep"])]
    async with opened(tmp_path, [source], destinations, flows) as runtime:
        pubsub = runtime.pubsub
        assert pubsub is not None
        async with serving(runtime):
            await eventually(lambda: asyncio.sleep(0, result="reading topic" in caplog.text))
            good = Message(orjson.dumps({"name": "order.paid", "data": {"id": 1}}))
            bad = Message(b"{not json")
            await pubsub.publish("shop.orders", [good, bad])

            async def stored() -> list[object]:
                return await runtime.store.find_events(WhereEvent(sources=["bus"]))

            [event] = await eventually(stored)
            assert (event.name, event.data) == ("order.paid", {"id": 1})
            await eventually(lambda: asyncio.sleep(0, result=caplog.text.count("message refused, nacked") >= 2))
        # Stopped: the good message was acked, the bad one went back to the group.
        await pubsub.publish("shop.orders", [Message(b"sentinel")])
        subscription = await pubsub.subscribe("shop.orders", group="core.bus.orders")
        bodies = []
        async for delivery in subscription:
            bodies.append(delivery.message.body)
            await delivery.ack()
            if delivery.message.body == b"sentinel":
                break
        await subscription.close()
        assert bodies == [b"{not json", b"sentinel"]
        assert len(await runtime.store.find_events(WhereEvent(sources=["bus"]))) == 1


async def test_a_subscription_trigger_needs_a_pubsub(tmp_path: Path) -> None:
    source = Source("bus", triggers=[SubscriptionTrigger("orders", "shop.orders")])
    async with opened(tmp_path, [source], pubsub="") as runtime:
        with pytest.raises(PipelineError) as caught:
            Gateway(runtime)
        assert "subscription trigger 'orders'" in str(caught.value) and "no pubsub" in str(caught.value)


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="core")
