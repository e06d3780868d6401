"""A trigger's own body limit (``HttpTrigger(max_body_bytes=...)``) and its answer shaper
(``HttpTrigger(answer=...)``), which let a plugin speak another protocol on the gateway (the
Segment source answers ``200 {"success": true}``), through real HTTP."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookspecs import ApiKey, HttpTrigger, Secret
from tests.gateway_kit import count, opened, serving, shop

SMALL = {"gateway.max_body_bytes": 4096}


def shaped(status: int, document: dict[str, Any]) -> tuple[int, Any]:
    """Another protocol's answers: 200 once stored, else the status with a code and message."""
    if status == 202:
        return 200, {"ok": True, "ids": document["event_ids"]}
    return status, {"ok": False, "code": status, "message": document["error"]}


async def test_a_trigger_lowers_the_body_limit(tmp_path: Path, client: httpx.AsyncClient) -> None:
    triggers = [HttpTrigger("small", "/small", max_body_bytes=100),
                HttpTrigger("large", "/large", max_body_bytes=10**9)]
    sources, destinations, flows = shop(*triggers)
    async with opened(tmp_path, sources, destinations, flows, **SMALL) as runtime, serving(runtime) as gateway:
        body = b'{"data": "' + b"x" * 200 + b'"}'
        small = await client.post(f"{gateway.url}/small", content=body)
        assert small.status_code == 413 and "100 bytes (this trigger's max_body_bytes)" in small.json()["error"]
        assert (await client.post(f"{gateway.url}/large", content=body)).status_code == 202
        large = await client.post(f"{gateway.url}/large", content=b'{"data": "' + b"x" * 5000 + b'"}')
        assert large.status_code == 413 and "4096 bytes (gateway.max_body_bytes)" in large.json()["error"]
        assert await count(runtime) == 1


async def test_answer_reshapes_every_answer(tmp_path: Path, client: httpx.AsyncClient,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAPED_KEY", "k-1")
    trigger = HttpTrigger("shaped", "/shaped", auth=ApiKey(Secret(env="SHAPED_KEY")), max_body_bytes=200,
                          answer=shaped)
    sources, destinations, flows = shop(trigger)
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        url, key = f"{gateway.url}/shaped", {"x-api-key": "k-1", "idempotency-key": "once"}
        stored = await client.post(url, json={"data": 1}, headers=key)
        assert stored.status_code == 200 and stored.json()["ok"] is True
        replay = await client.post(url, json={"data": 1}, headers=key)
        assert replay.json() == stored.json() and replay.headers["idempotent-replayed"] == "true"
        refusals = [
            (await client.post(url, json={"data": 1}), 401),
            (await client.post(url, json={"data": 1}, headers={"x-api-key": "nope"}), 403),
            (await client.post(url, content=b"{", headers={"x-api-key": "k-1"}), 400),
            (await client.post(url, content=b"x" * 300, headers={"x-api-key": "k-1"}), 413),
            (await client.post(url, json={"data": 2}, headers=key), 422),
        ]
        for answer, status in refusals:
            assert answer.status_code == status and answer.json()["ok"] is False, answer.text
            assert answer.json()["code"] == status and answer.json()["message"]
        plain = await client.post(f"{gateway.url}/webhooks/orders", json={"data": 1})
        assert plain.status_code == 202 and "event_id" in plain.json()  # other triggers keep the gateway's
        assert await count(runtime) == 2


async def test_an_answer_that_raises_sends_the_gateways_own(tmp_path: Path, client: httpx.AsyncClient,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    def broken(status: int, document: dict[str, Any]) -> tuple[int, Any]:
        raise KeyError("oops")

    sources, destinations, flows = shop(HttpTrigger("broken", "/broken", answer=broken))
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        with caplog.at_level(logging.ERROR, logger="core.gateway"):
            answer = await client.post(f"{gateway.url}/broken", json={"data": 1})
        assert answer.status_code == 202 and "event_id" in answer.json()
        assert "its answer() failed" in caplog.text


@pytest.mark.parametrize("limit", [0, -1, True, "1kb", 1.5])
def test_max_body_bytes_is_a_positive_integer(limit: Any) -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        HttpTrigger("t", "/t", max_body_bytes=limit)


def test_answer_is_callable() -> None:
    with pytest.raises(ValueError, match="answer"):
        HttpTrigger("t", "/t", answer="200")  # type: ignore[arg-type]
