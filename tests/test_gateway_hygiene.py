"""Request hygiene at the gateway: compressed bodies, nesting and unstorable values, CORS, the
rate limit and TLS, through real HTTP."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
import tracemalloc
import zlib
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import load_settings
from core.errors import ConfigError, CoreError
from core.gateway.body import TooLarge, read_body
from core.gateway.ratelimit import RateLimit
from hookspecs import (
    ApiKey,
    Cors,
    Destination,
    Event,
    EventDraft,
    Flow,
    HttpRequest,
    HttpTrigger,
    Payload,
    Secret,
    Source,
    Toolkit,
)
from tests.gateway_kit import Keep, count, opened, serving, shop, sqlite_url

EVENT = b'{"data": {"order": 1, "note": "' + b"x" * 2000 + b'"}}'


def nested(levels: int) -> bytes:
    return b'{"data": ' + b"[" * levels + b"]" * levels + b"}"


async def test_gzip_and_deflate_bodies_are_decoded(tmp_path: Path, client: httpx.AsyncClient) -> None:
    sources, destinations, flows = shop()
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        url = f"{gateway.url}/webhooks/orders"
        for encoding, body in (("gzip", gzip.compress(EVENT)), ("deflate", zlib.compress(EVENT)),
                               ("identity", EVENT)):
            answer = await client.post(url, content=body, headers={"content-encoding": encoding})
            assert answer.status_code == 202, (encoding, answer.text)
            event = await runtime.store.get_event(answer.json()["event_id"])
            assert event is not None and event.data["order"] == 1
        refusals = {
            "br": (415, "'br' is not supported"),
            "gzip": (400, "does not decompress"),
        }
        for encoding, (status, message) in refusals.items():
            answer = await client.post(url, content=EVENT, headers={"content-encoding": encoding})
            assert answer.status_code == status and message in answer.json()["error"], answer.text
        truncated = await client.post(url, content=gzip.compress(EVENT)[:-12], headers={"content-encoding": "gzip"})
        assert truncated.status_code == 400 and "truncated" in truncated.json()["error"]
        assert await count(runtime) == 3


async def test_a_gzip_bomb_is_413(tmp_path: Path, client: httpx.AsyncClient) -> None:
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # 64 MiB that weighs ~64 KiB
    sources, destinations, flows = shop()
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        answer = await client.post(f"{gateway.url}/webhooks/orders", content=bomb,
                                   headers={"content-encoding": "gzip"})
        assert answer.status_code == 413 and "gateway.max_body_bytes" in answer.json()["error"]
        assert await count(runtime) == 0


async def test_decompressing_a_bomb_uses_memory_bounded_by_the_limit() -> None:
    limit = 1 << 20
    bomb = gzip.compress(b"\0" * (256 << 20), compresslevel=9)
    chunks = [bomb[i:i + 65536] for i in range(0, len(bomb), 65536)]

    async def receive() -> MutableMapping[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    scope = {"headers": [(b"content-encoding", b"gzip")]}
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            await read_body(scope, receive, limit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * limit, peak


async def test_deep_nesting_is_a_400_naming_the_limit(tmp_path: Path, client: httpx.AsyncClient) -> None:
    """255 levels used to pass the decoder and fail the store's encoder, answered as a 503."""
    sources, destinations, flows = shop()
    async with opened(tmp_path, sources, destinations, flows, store=sqlite_url(tmp_path)) as runtime, \
            serving(runtime) as gateway:
        url = f"{gateway.url}/webhooks/orders"
        assert (await client.post(url, content=nested(127))).status_code == 202
        for levels in (128, 255, 1000, 100_000):
            answer = await client.post(url, content=nested(levels))
            assert answer.status_code == 400, (levels, answer.text)
            assert "deeper than 128 levels" in answer.json()["error"] and "gateway.max_json_depth" in answer.text
        assert await count(runtime) == 1


async def test_what_the_store_cannot_encode_is_a_400_never_a_503(tmp_path: Path, client: httpx.AsyncClient) -> None:
    def deep(request: HttpRequest) -> list[EventDraft]:
        value: Any = []
        for _ in range(300):
            value = [value]
        return [EventDraft(data={"deep": value} if request.path_params["what"] == "deep" else {1: "int key"})]

    source = Source("odd", [HttpTrigger("odd", "/odd/{what}", extract=deep), HttpTrigger("plain", "/plain")])
    async with opened(tmp_path, [source], store=sqlite_url(tmp_path)) as runtime, serving(runtime) as gateway:
        for what in ("deep", "keys"):
            answer = await client.post(f"{gateway.url}/odd/{what}", content=b"{}")
            assert answer.status_code == 400, answer.text
            assert "cannot be stored as JSON" in answer.json()["error"]
        answer = await client.post(f"{gateway.url}/plain", json={"data": 1})
        assert answer.status_code == 202, answer.text
        assert await count(runtime) == 1


async def test_marshal_payload_that_cannot_be_stored_costs_the_job(tmp_path: Path,
                                                                   client: httpx.AsyncClient) -> None:
    class Strange(Keep):
        name = "strange"

        def marshal(self, event: Event, toolkit: Toolkit) -> Payload | None:
            return Payload(data={"a set": {1, 2}})

    source = Source("shop", [HttpTrigger("orders", "/orders")])
    flows = [Flow("both", source="shop", actions=["sink.strange", "sink.keep"])]
    async with opened(tmp_path, [source], [Destination("sink", [Keep(), Strange()])], flows,
                      store=sqlite_url(tmp_path)) as runtime, serving(runtime) as gateway:
        answer = await client.post(f"{gateway.url}/orders", json={"data": 1})
        assert answer.status_code == 202, answer.text
        assert [e["action"] for e in answer.json()["errors"]] == ["sink.strange"]
        assert "cannot be stored as JSON" in answer.json()["errors"][0]["error"]
        assert len(answer.json()["job_ids"]) == 1


async def test_cors_preflight_and_answers(tmp_path: Path, client: httpx.AsyncClient) -> None:
    cors = Cors(origins=["https://shop.example"], headers=["content-type", "x-api-key"])
    source = Source("web", [HttpTrigger("track", "/track", cors=cors), HttpTrigger("closed", "/closed")])
    async with opened(tmp_path, [source]) as runtime, serving(runtime) as gateway:
        url = f"{gateway.url}/track"
        asked = {"origin": "https://shop.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "Content-Type, X-API-Key"}
        preflight = await client.options(url, headers=asked)
        assert preflight.status_code == 204, preflight.text
        assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
        assert preflight.headers["access-control-allow-methods"] == "POST"
        assert preflight.headers["access-control-allow-headers"] == "content-type, x-api-key"
        assert preflight.headers["access-control-max-age"] == "600"
        for change, message in (({"origin": "https://evil.example"}, "origin 'https://evil.example' is not allowed"),
                                ({"access-control-request-headers": "x-debug"}, "x-debug not allowed"),
                                ({"access-control-request-method": "DELETE"}, "does not answer DELETE")):
            refused = await client.options(url, headers={**asked, **change})
            assert refused.status_code == 403 and message in refused.json()["error"], refused.text
            assert "access-control-allow-origin" not in refused.headers
        plain = await client.options(url)
        assert plain.status_code == 204 and plain.headers["allow"] == "OPTIONS, POST"
        posted = await client.post(url, json={"data": 1}, headers={"origin": "https://shop.example"})
        assert posted.status_code == 202 and posted.headers["access-control-allow-origin"] == "https://shop.example"
        other = await client.post(url, json={"data": 1}, headers={"origin": "https://evil.example"})
        assert other.status_code == 202 and "access-control-allow-origin" not in other.headers
        assert (await client.options(f"{gateway.url}/closed", headers=asked)).status_code == 405


async def test_rate_limit_per_client_key(tmp_path: Path, client: httpx.AsyncClient,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORE_TEST_KEYS", "key-a key-b")
    source = Source("web", [HttpTrigger("track", "/track", auth=ApiKey(Secret(env="CORE_TEST_KEYS"))),
                            HttpTrigger("open", "/open")])
    async with opened(tmp_path, [source], **{"gateway.rate_limit": 0.01, "gateway.rate_burst": 2}) as runtime, \
            serving(runtime) as gateway:
        url = f"{gateway.url}/track"
        codes = [(await client.post(url, json={"data": 1}, headers={"x-api-key": "key-a"})).status_code
                 for _ in range(3)]
        assert codes == [202, 202, 429]
        limited = await client.post(url, json={"data": 1}, headers={"x-api-key": "key-a"})
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 100
        assert "gateway.rate_limit" in limited.json()["error"]
        assert (await client.post(url, json={"data": 1}, headers={"x-api-key": "key-b"})).status_code == 202
        by_address = [(await client.post(f"{gateway.url}/open", json={"data": 1})).status_code for _ in range(3)]
        assert by_address == [202, 202, 429]
        assert await count(runtime) == 5


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key


async def test_tls_listener(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    sources, destinations, flows = shop()
    async with opened(tmp_path, sources, destinations, flows,
                      **{"gateway.tls_certfile": str(cert), "gateway.tls_keyfile": str(key)}) as runtime, \
            serving(runtime) as gateway:
        assert gateway.url.startswith("https://127.0.0.1:")
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(cert)), timeout=30) as https:
            answer = await https.post(f"{gateway.url}/webhooks/orders", json={"data": 1})
        assert answer.status_code == 202, answer.text
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient(timeout=30) as untrusting:  # the system's CAs do not know it
                await untrusting.post(f"{gateway.url}/webhooks/orders", json={"data": 1})


async def test_tls_files_are_checked_at_start(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    with pytest.raises(ConfigError, match="gateway.tls_keyfile"):
        load_settings(cwd=tmp_path, environ={},
                      overrides={"gateway.tls_certfile": str(cert)})
    sources, destinations, flows = shop()
    async with opened(tmp_path, sources, destinations, flows,
                      **{"gateway.tls_certfile": str(cert), "gateway.tls_keyfile": "missing.pem"}) as runtime:
        with pytest.raises(CoreError, match="cannot serve HTTPS") as raised:
            async with serving(runtime):
                await asyncio.sleep(0)
        assert "missing.pem" in str(raised.value)


@pytest.mark.parametrize("body, message", [
    (b'{"sent_at": "0001-01-01T00:00:00+05:00"}', "from year 1 to 9999"),
    (b'{"sent_at": "9999-12-31T23:59:59-05:00"}', "from year 1 to 9999"),
    (b'{"name": "a\\u0000b"}', "NUL character"),
])
async def test_values_no_store_keeps_are_400(tmp_path: Path, client: httpx.AsyncClient, body: bytes,
                                             message: str) -> None:
    """These passed the decoder and failed the commit (a sent_at outside UTC's years overflowed), answered 503."""
    sources, destinations, flows = shop()
    async with opened(tmp_path, sources, destinations, flows, store=sqlite_url(tmp_path)) as runtime, \
            serving(runtime) as gateway:
        answer = await client.post(f"{gateway.url}/webhooks/orders", content=body)
        assert answer.status_code == 400 and message in answer.json()["error"], answer.text
        assert await count(runtime) == 0


def test_rate_limit_buckets_refill() -> None:
    limit = RateLimit(rate=2.0, burst=3)
    assert [limit.wait("a", now=0) for _ in range(4)] == [0, 0, 0, 1]
    assert limit.wait("b", now=0) == 0  # another client, another bucket
    assert limit.wait("a", now=0.5) == 0 and limit.wait("a", now=0.5) == 1
    assert [limit.wait("a", now=10) for _ in range(4)] == [0, 0, 0, 1]  # full again, never above burst
