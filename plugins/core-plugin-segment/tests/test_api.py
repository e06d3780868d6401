"""The Segment HTTP API of a real gateway process, request by request: every path, the write
key (401 / 403), the size limits, malformed bodies (a clear 400, never a 5xx), per-message
idempotency, and no key in the gateway's DEBUG log."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from conftest import OTHER_KEY, WRITE_KEY, events
from core.testing import Deployment

from core_plugin_segment import MAX_BATCH_BYTES, MAX_CALL_BYTES

pytestmark = pytest.mark.slow

CANARY = "wk_wrong_canary_5e1f0d"


@pytest.fixture
def client(gateway: Deployment) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, auth=(WRITE_KEY, ""), timeout=10) as session:
        yield session


def stored(gateway: Deployment, message_id: str) -> list[dict[str, Any]]:
    return [e for e in events(gateway) if e["data"].get("messageId") == message_id]


CALLS: dict[str, dict[str, Any]] = {
    "track": {"userId": "u1", "event": "Clicked", "properties": {"button": "buy"}},
    "identify": {"userId": "u1", "traits": {"email": "u1@example.com"}},
    "page": {"anonymousId": "a1", "name": "Pricing", "properties": {"path": "/pricing"}},
    "screen": {"userId": "u1", "name": "Settings"},
    "group": {"userId": "u1", "groupId": "acme", "traits": {"plan": "team"}},
    "alias": {"previousId": "a1", "userId": "u1"},
}


@pytest.mark.parametrize("kind", sorted(CALLS))
def test_each_call_is_stored_under_its_type(gateway: Deployment, client: httpx.Client, kind: str) -> None:
    message = {**CALLS[kind], "messageId": f"call-{kind}", "timestamp": "2024-05-01T12:00:00Z",
               "sentAt": "2024-05-01T12:00:01Z", "context": {"locale": "fr-FR"}}
    answer = client.post(f"/v1/{kind}", json=message)
    assert (answer.status_code, answer.json()) == (200, {"success": True})
    [event] = stored(gateway, f"call-{kind}")
    assert event["name"] == kind and event["data"]["type"] == kind
    assert event["context"] == {"locale": "fr-FR"}
    assert event["sent_at"].startswith("2024-05-01T12:00:01")
    assert {k: v for k, v in event["data"].items() if k in CALLS[kind]} == CALLS[kind]


def test_import_is_a_batch_with_shared_context(gateway: Deployment, client: httpx.Client) -> None:
    body = {"batch": [{"type": "track", "userId": "u2", "event": "Imported", "messageId": "import-1",
                       "context": {"ip": "198.51.100.1"}}],
            "context": {"app": {"name": "shop"}, "ip": "0.0.0.0"}, "sentAt": "2024-05-02T08:00:00Z"}
    answer = client.post("/v1/import", content=gzip.compress(orjson.dumps(body)),
                         headers={"content-encoding": "gzip", "content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    [event] = stored(gateway, "import-1")
    assert event["context"] == {"app": {"name": "shop"}, "ip": "198.51.100.1"}
    assert event["sent_at"].startswith("2024-05-02T08:00:00")


def test_a_message_id_is_stored_once(gateway: Deployment, client: httpx.Client) -> None:
    message = {"userId": "u3", "event": "Paid", "messageId": "once-1"}
    assert client.post("/v1/track", json=message).status_code == 200
    assert client.post("/v1/track", json={**message, "sentAt": "2024-05-03T00:00:00Z"}).status_code == 200
    assert client.post("/v1/batch", json={"batch": [{**message, "type": "track"}]}).status_code == 200
    assert len(stored(gateway, "once-1")) == 1
    other = client.post("/v1/track", json={**message, "event": "Refunded"})
    assert other.status_code == 422 and other.json()["code"] == "conflict"
    assert "once-1" in other.json()["message"]


def test_the_write_key(gateway: Deployment) -> None:
    message = {"userId": "u4", "event": "Denied", "messageId": "auth-1"}
    url = f"{gateway.url}/v1/track"
    missing = httpx.post(url, json=message)
    assert missing.status_code == 401 and missing.json()["success"] is False
    assert missing.json()["code"] == "unauthorized" and "HTTP Basic" in missing.json()["message"]
    wrong = httpx.post(url, json=message, auth=(CANARY, ""))
    assert (wrong.status_code, wrong.json()["code"]) == (403, "forbidden")
    garbled = httpx.post(url, json=message, headers={"authorization": "Basic %%%"})
    assert garbled.status_code == 403
    mobile = httpx.post(url, json=message, auth=("wk_mobile_1", ""))  # the key of another source
    assert mobile.status_code == 403
    assert stored(gateway, "auth-1") == []
    assert httpx.post(url, json=message, auth=(OTHER_KEY, "")).status_code == 200  # the second key of a rotation


def test_size_limits(gateway: Deployment, client: httpx.Client) -> None:
    big = "x" * MAX_CALL_BYTES
    call = client.post("/v1/track", json={"userId": "u5", "event": "Big", "properties": {"p": big}})
    assert call.status_code == 413 and call.json()["code"] == "payload_too_large"
    assert f"{MAX_CALL_BYTES} bytes" in call.json()["message"]
    in_batch = client.post("/v1/batch", json={"batch": [{"type": "track", "userId": "u5", "event": "Big",
                                                         "properties": {"p": big}}]})
    assert in_batch.status_code == 400 and "batch[0]" in in_batch.json()["message"]
    small = {"type": "track", "userId": "u5", "event": "Many", "properties": {"p": "y" * 20_000}}
    batch = client.post("/v1/batch", content=gzip.compress(orjson.dumps({"batch": [small] * 30})),
                        headers={"content-encoding": "gzip"})  # 600 KB once decompressed
    assert batch.status_code == 413 and f"{MAX_BATCH_BYTES} bytes" in batch.json()["message"]


BAD = [
    (b"", "empty"),
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"event": "x"}', "userId or an anonymousId"),
    (b'{"userId": "u"}', "needs event"),
    (b'{"userId": "u", "event": "x", "timestamp": "yesterday"}', "ISO 8601"),
    (b'{"userId": "u", "event": "x", "messageId": 7}', "messageId"),
    (b'{"userId": "u", "event": "x", "messageId": ""}', "idempotency key"),
    (b'{"userId": "u", "event": "x", "context": []}', "context"),
    (b"\xff\xfe\x00", "not valid JSON"),
    (b'{"userId": "u", "event": "x", "properties": ' + b"[" * 300 + b"]" * 300 + b"}", "254 levels"),
]


@pytest.mark.parametrize(("body", "said"), BAD)
def test_a_malformed_call_is_a_clear_400(client: httpx.Client, body: bytes, said: str) -> None:
    answer = client.post("/v1/track", content=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["success"] is False and said in answer.json()["message"]


BAD_BATCHES = [
    (b'{"batch": []}', "at least one message"),
    (b'{"batch": {"type": "track"}}', "at least one message"),
    (b'{"batch": [1]}', "batch[0] must be a JSON object"),
    (b'{"batch": [{"type": "boom", "userId": "u"}]}', "not one of"),
    (b'{"batch": [{"type": "alias", "userId": "u"}]}', "previousId"),
    (b'{"batch": [{"type": "track", "userId": "u", "event": "e"}], "sentAt": 5}', "sentAt"),
    (b'{"batch": ' + b"[" * 100_000, "not valid JSON"),
    (b'{"batch": [{"type": "track", "userId": "u", "event": "e", "properties": ' + b"[" * 300 + b"]" * 300
     + b"}]}", "254 levels"),
]


@pytest.mark.parametrize(("body", "said"), BAD_BATCHES)
def test_a_malformed_batch_is_a_clear_400(client: httpx.Client, body: bytes, said: str) -> None:
    answer = client.post("/v1/batch", content=body)
    assert answer.status_code == 400, answer.text
    assert said in answer.json()["message"]


def test_other_methods_and_encodings_are_no_5xx(client: httpx.Client) -> None:
    assert client.get("/v1/track").status_code == 405
    assert client.post("/v1/unknown", json={}).status_code == 404
    assert client.post("/v1/track", content=b"x", headers={"content-encoding": "br"}).status_code == 415
    assert client.post("/v1/track", content=b"not gzip", headers={"content-encoding": "gzip"}).status_code == 400


def test_no_key_in_the_log(gateway: Deployment, client: httpx.Client) -> None:
    """The canary: after right, wrong and garbled keys, the DEBUG log holds none of them."""
    httpx.post(f"{gateway.url}/v1/track", json={"userId": "u", "event": "e"}, auth=(CANARY, ""))
    client.post("/v1/track", json={"userId": "u", "event": "canary"})
    log = gateway.logs()
    assert "DEBUG" in log and "answered 403" in log
    for key in (WRITE_KEY, OTHER_KEY, CANARY, "wk_mobile_1"):
        for shown in (key, base64.b64encode(f"{key}:".encode()).decode().rstrip("=")):
            assert shown not in log
