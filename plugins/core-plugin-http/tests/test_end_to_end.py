"""End to end through real processes: events POSTed to a running ``core start`` (gateway and
scheduler) reach the receiver as signed webhooks it verifies with ``standardwebhooks``; a
terminal answer (404) is discarded after one attempt."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
from conftest import NEW, Receiver
from core.testing import ServerProcess, create_adapter, free_port
from hookspecs import Status, WhereJob

APP = """
from core_plugin_http import WebhookDestination
from hookspecs import Flow, HttpTrigger, Schedule, Secret, Source, hookimpl

@hookimpl
def core_register_sources():
    return [Source("shop", [HttpTrigger("orders", "/orders")])]

@hookimpl
def core_register_destinations():
    realtime = Schedule(realtime=True, max_retries=2)
    return [
        WebhookDestination("partner", url="{ok}", secrets=Secret(env="PARTNER_WHSEC"),
                           allow_private=True, schedule=realtime),
        WebhookDestination("gone", url="{missing}", secrets=Secret(env="PARTNER_WHSEC"),
                           allow_private=True, schedule=realtime),
    ]

@hookimpl
def core_register_flows():
    return [Flow("orders-out", "shop", ["partner.post", "gone.post"])]
"""


async def test_posted_events_arrive_signed_and_a_404_is_discarded_once(receiver: Receiver, tmp_path: Path) -> None:
    app = APP.replace("{ok}", receiver.url("/ok")).replace("{missing}", receiver.url("/missing"))
    (tmp_path / "app.py").write_text(app)
    store = f"sqlite:///{tmp_path / 'core.db'}"
    config = tmp_path / "core.toml"
    config.write_text(f'app = "{tmp_path / "app.py"}"\nstore = "{store}"\npubsub = "memory://"\n')
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")} | {
        "CORE_GATEWAY_PORT": str(port), "CORE_ADMIN_PORT": "0", "CORE_CONFIG": str(config), "PARTNER_WHSEC": NEW,
    }
    command = [sys.executable, "-m", "core", "start"]
    with ServerProcess(command, port, log=tmp_path / "core.log", env=env):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for n in range(3):
                key = {"Idempotency-Key": f"order-{n}"}
                answer = await client.post("/orders", json={"data": {"order": n}}, headers=key)
                assert answer.status_code == 202, answer.text
        deadline = asyncio.get_running_loop().time() + 30
        while len(receiver.got) < 6 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
    ok = [r for r in receiver.got if r["path"] == "/ok"]
    assert sorted(r["headers"]["webhook-id"] for r in ok) == ["order-0", "order-1", "order-2"]
    assert all(r["verified"] for r in receiver.got), "every request verifies with the receiver's secret"
    assert len([r for r in receiver.got if r["path"] == "/missing"]) == 3, "a 404 is not retried"
    adapter = create_adapter("store", store)
    await adapter.open()
    try:
        jobs = await adapter.find_jobs(WhereJob())
    finally:
        await adapter.close()
    by_destination = {(j.destination, j.status, j.attempt) for j in jobs}
    assert by_destination == {("partner", Status.SUCCEEDED, 1), ("gone", Status.DISCARDED, 1)}
