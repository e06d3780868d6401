"""No key or secret, ours or a caller's, appears in the gateway's output at DEBUG: a real
``core start gateway`` process serves authenticated triggers, and its whole output is searched."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path

import httpx

from core.testing.processes import Deployment

API_KEY = "canary-apikey-5b1f0c9e"
WRONG_KEY = "canary-wrong-key-77aa01"
WHSEC_RAW = b"canary-whsec-bytes-0123456789ab"
WHSEC = "whsec_" + base64.b64encode(WHSEC_RAW).decode()
HMAC_SECRET = "canary-hmac-secret-d00d"

APP = """
from hookspecs import ApiKey, HmacSignature, HttpTrigger, Secret, Source, StandardWebhook, hookimpl

@hookimpl
def core_register_sources():
    return [Source("edge", [
        HttpTrigger("track", "/track", auth=ApiKey(Secret(env="SHOP_API_KEY"))),
        HttpTrigger("hooks", "/hooks", auth=StandardWebhook(Secret(file="whsec.txt"))),
        HttpTrigger("github", "/github", auth=HmacSignature(Secret(env="SHOP_HMAC"), header="X-Hub-Signature-256",
                                                            prefix="sha256=")),
    ])]
"""


def test_no_secret_in_the_debug_log(tmp_path: Path) -> None:
    (tmp_path / "whsec.txt").write_text(WHSEC + "\n")
    env = {"SHOP_API_KEY": API_KEY, "SHOP_HMAC": HMAC_SECRET}
    settings = {"log": {"level": "debug"}, "supervisor": "", "wanderer": ""}
    body = b'{"data": {"n": 1}}'
    with Deployment(tmp_path, APP, settings=settings, env=env) as deploy, httpx.Client(timeout=30) as http:
        gateway = deploy.start("gateway")
        statuses = []
        for headers in ({}, {"x-api-key": WRONG_KEY}, {"authorization": f"Bearer {API_KEY}"},
                        {"authorization": "Basic " + base64.b64encode(f"{WRONG_KEY}:".encode()).decode()},
                        {"authorization": "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()}):
            statuses.append(http.post(f"{deploy.url}/track", content=body, headers=headers).status_code)
        stamp = str(int(time.time()))
        mac = hmac.new(WHSEC_RAW, f"msg_1.{stamp}.".encode() + body, hashlib.sha256).digest()
        signed = {"webhook-id": "msg_1", "webhook-timestamp": stamp,
                  "webhook-signature": "v1," + base64.b64encode(mac).decode()}
        for headers in (signed, signed, {**signed, "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}):
            statuses.append(http.post(f"{deploy.url}/hooks", content=body, headers=headers).status_code)
        github = "sha256=" + hmac.new(HMAC_SECRET.encode(), body, "sha256").hexdigest()
        for value in (github, "sha256=" + "0" * 64):
            statuses.append(http.post(f"{deploy.url}/github", content=body,
                                      headers={"x-hub-signature-256": value}).status_code)
        assert statuses == [401, 403, 202, 403, 202, 202, 409, 403, 202, 403]
        deploy.stop()
    output = gateway.output()
    assert "answered 403" in output, output[-2000:]  # the refusals are logged at DEBUG
    canaries = [API_KEY, WRONG_KEY, WHSEC, WHSEC.removeprefix("whsec_"), HMAC_SECRET, WHSEC_RAW.decode(),
                base64.b64encode(f"{API_KEY}:".encode()).decode(), base64.b64encode(mac).decode(),
                github.removeprefix("sha256=")]
    leaked = [canary for canary in canaries if canary in output]
    assert not leaked, f"secrets in the gateway's output: {leaked}\n{output[-3000:]}"
