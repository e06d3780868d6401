"""A CDC listener whose node lost the trigger's lease (it froze past the TTL) stores nothing:
``emit`` refuses before the store is touched, so the listener advances no position (issue 12)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from core.builtin.local.supervisor import LocalSupervisor
from core.gateway.cdc import LeaseLost, make_emit
from core.gateway.singleton import run_singleton
from hookspecs import EventDraft

TTL = 0.3


class RecordingIngestor:
    """Stands in for the gateway's Ingestor: records what would be stored."""

    def __init__(self) -> None:
        self.stored: list[EventDraft] = []

    async def ingest(self, source: str, trigger: str, drafts: Sequence[EventDraft]) -> Any:
        self.stored.extend(drafts)
        return type("Done", (), {"event_ids": [f"e{i}" for i in range(len(drafts))]})()


async def test_a_listener_frozen_past_its_lease_cannot_emit() -> None:
    supervisor = LocalSupervisor()
    ingestor = RecordingIngestor()
    emit = make_emit(ingestor, "shop", "orders")  # type: ignore[arg-type]
    outcome: list[object] = []

    async def listen() -> None:
        outcome.append(await emit([EventDraft(data={"n": 1})]))
        time.sleep(TTL * 2)  # the whole process freezes: no renewal, the lease lapses
        thief = await supervisor.acquire("trigger:shop/orders", owner="other-node", ttl=60)
        assert thief is not None, "the lapsed lease is free for another node"
        try:
            await emit([EventDraft(data={"n": 2})])
        except LeaseLost as exc:
            outcome.append(str(exc))
        await asyncio.sleep(60)  # cancelled by the singleton once it sees the lease gone

    # Once the lease is lost the singleton waits to win it back (forever here): stop it after.
    holder = asyncio.create_task(
        run_singleton(supervisor, "trigger:shop/orders", owner="this-node", ttl=TTL, work=listen)
    )
    deadline = time.monotonic() + 10
    while len(outcome) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    holder.cancel()
    await asyncio.gather(holder, return_exceptions=True)
    assert [d.data for d in ingestor.stored] == [{"n": 1}]
    assert outcome[0] == ["e0"]
    assert "no longer holds the trigger's lease" in str(outcome[1])
