"""Property 16 of the reliability battery: canary secrets everywhere, DEBUG logging on. A real
``core start`` (gateway, scheduler and admin API in one process) runs on a PostgreSQL store
and a NATS broker whose URLs carry passwords, with an admin token and an HMAC-signed trigger;
signed, badly signed and admin requests are sent. No canary appears in any line the process
printed, in ``core config show`` (text and ``--json``), in any admin API answer, nor in the
error ``core start`` prints when the store or the broker cannot be reached."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from core.testing.processes import Deployment
from tests.chaos_kit import store_url  # noqa: F401 - the fixture

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

PG_PASSWORD = "canary-pg-pass-4f2a"
NATS_PASSWORD = "canary-nats-pass-91c3"
ADMIN_SECRET = "canary-admin-token-e7d5"
HMAC_SECRET = "canary-hmac-secret-0b6e"
CANARIES = (PG_PASSWORD, NATS_PASSWORD, ADMIN_SECRET, HMAC_SECRET)
#: A port nothing listens on (the task's range), for the unreachable store and broker.
DEAD_PORT = 19531

APP = """
from hookspecs import Action, Destination, Flow, HmacSignature, HttpTrigger, Schedule, Secret, Source, hookimpl

class Record(Action):
    name = "record"
    schedule = Schedule(realtime=True)

    async def load(self, toolkit, queue):
        toolkit.logger.debug("loaded %d jobs", len(queue.jobs))

@hookimpl
def core_register_sources():
    return [Source("github", [HttpTrigger("push", "/github", auth=HmacSignature(
        Secret(env="SHOP_HMAC"), header="X-Hub-Signature-256", prefix="sha256="))])]

@hookimpl
def core_register_destinations():
    return [Destination("sink", [Record()])]

@hookimpl
def core_register_flows():
    return [Flow("pushes", source="github", actions=["sink.record"])]
"""

_ADMIN = re.compile(r"(http://[\d.]+:\d+)/admin/api")


def start_output(project: Path, urls: dict[str, str], settings: dict[str, object], env: dict[str, str]) -> str:
    """What ``core start`` prints in 15 s (it exits, or runs on and is stopped) on ``urls``."""
    Deployment(project, APP, store=urls["store"], pubsub=urls["pubsub"], settings=settings)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
    with subprocess.Popen([sys.executable, "-m", "core", "start", "--port", "0"], cwd=project, text=True,
                          env={**clean, **env, "CORE_ADMIN_PORT": "0"}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as process:
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
    return output


def leaked(text: str) -> list[str]:
    """The canaries found in ``text``."""
    return [canary for canary in CANARIES if canary in text]


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_no_canary_secret_in_logs_config_or_admin_answers(tmp_path: Path, store_url: str) -> None:  # noqa: F811
    store = store_url.replace("postgres@", f"postgres:{PG_PASSWORD}@")
    pubsub = f"nats://core:{NATS_PASSWORD}@127.0.0.1:4222"
    env = {"SHOP_HMAC": HMAC_SECRET, "CORE_ADMIN_TOKEN": f"ops:write:{ADMIN_SECRET}"}
    settings = {"log": {"level": "debug"}, "supervisor": "", "wanderer": ""}
    seen: dict[str, str] = {}
    body = b'{"data": {"n": 1}}'
    signature = "sha256=" + hmac.new(HMAC_SECRET.encode(), body, hashlib.sha256).hexdigest()
    with Deployment(tmp_path, APP, store=store, pubsub=pubsub, settings=settings, env=env) as deploy:
        core = deploy.start()
        with httpx.Client(timeout=30) as http:
            signed = http.post(f"{deploy.url}/github", content=body, headers={"x-hub-signature-256": signature})
            assert signed.status_code == 202, signed.text
            refused = http.post(f"{deploy.url}/github", content=body, headers={"x-hub-signature-256": "sha256=00"})
            assert refused.status_code == 403, refused.text
            [event] = signed.json()["event_ids"]
            deploy.wait_for_status(event, "succeeded")
            found = _ADMIN.search(core.output())
            assert found, core.output()
            admin = f"{found.group(1)}/admin/api"
            headers = {"authorization": f"Bearer {ADMIN_SECRET}"}
            [job] = signed.json()["job_ids"]
            for path in ("/options", "/sources", "/sources/github", "/sources/github/triggers/push",
                         "/destinations", "/destinations/sink/actions/record", "/store/events",
                         f"/store/events/{event}", "/store/jobs", f"/store/jobs/{job}", "/nodes",
                         "/openapi.json"):
                answer = http.get(f"{admin}{path}", headers=headers)
                assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text[:200]}"
                seen[f"GET {path}"] = answer.text
            seen["GET /options without a token"] = http.get(f"{admin}/options").text
        seen["core config show"] = deploy.core("config", "show")
        seen["core config show --json"] = deploy.core("config", "show", "--json")
        deploy.stop()
        seen["core start (DEBUG)"] = core.output()
        assert "DEBUG" in seen["core start (DEBUG)"], "the process logged nothing at DEBUG"
    for where, dead in (("store", {"store": f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{DEAD_PORT}/x"}),
                        ("pubsub", {"pubsub": f"nats://core:{NATS_PASSWORD}@127.0.0.1:{DEAD_PORT}"})):
        seen[f"core start, {where} unreachable"] = start_output(tmp_path / f"dead-{where}", {
            "store": store, "pubsub": pubsub, **dead}, settings, env)
        assert str(DEAD_PORT) in seen[f"core start, {where} unreachable"], "the error does not name the address"
    found = {where: leaked(text) for where, text in seen.items() if leaked(text)}
    assert not found, f"canary secrets shown: {found}"
