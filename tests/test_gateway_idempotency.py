"""Idempotency at the gateway: the ``Idempotency-Key`` header and a draft's own key, against
a running server and real HTTP, on SQLite and the in-memory store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest

from core.observability import metrics
from hookspecs import (
    Action,
    Destination,
    Event,
    EventDraft,
    Flow,
    HttpRequest,
    HttpTrigger,
    Payload,
    Source,
    Toolkit,
    WhereEvent,
)
from tests.gateway_kit import opened, serving, shop, sqlite_url

ORDERS = "/webhooks/orders"


@pytest.fixture(params=["sqlite", "memory"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return sqlite_url(tmp_path) if request.param == "sqlite" else "memory://"


async def stored_ids(runtime: object) -> list[str]:
    return [event.id for event in await runtime.store.find_events(WhereEvent())]  # type: ignore[attr-defined]


async def test_a_retry_answers_the_original_event_and_stores_nothing(
    tmp_path: Path, client: httpx.AsyncClient, store_url: str
) -> None:
    async with opened(tmp_path, *shop(), store=store_url) as runtime, serving(runtime) as gateway:
        headers = {"Idempotency-Key": "order-7"}
        first = await client.post(f"{gateway.url}{ORDERS}", json={"data": {"id": 7}}, headers=headers)
        retry = await client.post(f"{gateway.url}{ORDERS}", json={"data": {"id": 7}}, headers=headers)
        assert (first.status_code, retry.status_code) == (202, 202), retry.text
        assert "idempotent-replayed" not in first.headers
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json() == first.json(), "a replay answers what the first request answered"
        assert await stored_ids(runtime) == [first.json()["event_id"]]
        event = await runtime.store.get_event(first.json()["event_id"])
        assert event is not None and [job.idempotency_key for job in event.jobs] == ["order-7"]


async def test_the_same_key_with_another_body_is_422_and_stores_nothing(
    tmp_path: Path, client: httpx.AsyncClient, store_url: str
) -> None:
    async with opened(tmp_path, *shop(), store=store_url) as runtime, serving(runtime) as gateway:
        headers = {"Idempotency-Key": '"order-7"'}  # the draft's quoted form is the same key
        first = await client.post(f"{gateway.url}{ORDERS}", json={"data": {"id": 7}}, headers=headers)
        other = await client.post(f"{gateway.url}{ORDERS}", json={"data": {"id": 8}},
                                  headers={"Idempotency-Key": "order-7"})
        assert other.status_code == 422, other.text
        assert "order-7" in other.json()["error"] and "nothing was stored" in other.json()["error"]
        assert other.json()["event_id"] == first.json()["event_id"]
        assert await stored_ids(runtime) == [first.json()["event_id"]]


async def test_keys_are_per_source_and_absent_keys_never_deduplicate(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    sources, destinations, flows = shop()
    other = Source("other", triggers=[HttpTrigger("in", "/other")])
    async with opened(tmp_path, [*sources, other], destinations, flows) as runtime, serving(runtime) as gateway:
        headers = {"Idempotency-Key": "k"}
        for path in (ORDERS, "/other"):
            assert (await client.post(f"{gateway.url}{path}", json={"data": 1}, headers=headers)).status_code == 202
        for _ in range(2):
            assert (await client.post(f"{gateway.url}{ORDERS}", json={"data": 1})).status_code == 202
        assert len(await stored_ids(runtime)) == 4


async def test_a_batch_under_one_key_is_replayed_whole(tmp_path: Path, client: httpx.AsyncClient) -> None:
    async with opened(tmp_path, *shop(), store=sqlite_url(tmp_path)) as runtime, serving(runtime) as gateway:
        batch = {"events": [{"data": 1}, {"data": 2}]}
        headers = {"Idempotency-Key": "batch-1"}
        first = await client.post(f"{gateway.url}{ORDERS}", json=batch, headers=headers)
        retry = await client.post(f"{gateway.url}{ORDERS}", json=batch, headers=headers)
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json()["event_ids"] == first.json()["event_ids"]
        assert sorted(retry.json()["job_ids"]) == sorted(first.json()["job_ids"])
        assert sorted(await stored_ids(runtime)) == sorted(first.json()["event_ids"])


@pytest.mark.parametrize("key", ["", '""', "x" * 256])
async def test_a_bad_key_is_400(tmp_path: Path, client: httpx.AsyncClient, key: str) -> None:
    async with opened(tmp_path, *shop()) as runtime, serving(runtime) as gateway:
        response = await client.post(f"{gateway.url}{ORDERS}", json={"data": 1}, headers={"Idempotency-Key": key})
        assert response.status_code == 400, response.text
        assert "Idempotency-Key" in response.json()["error"]
        assert await stored_ids(runtime) == []


def segment_like(request: HttpRequest) -> list[EventDraft]:
    """A trigger keying each event by its ``messageId``, as Segment's API does."""
    body = orjson.loads(request.body)
    return [EventDraft(data=item, idempotency_key=item["messageId"]) for item in body["batch"]]


class Echo(Action):
    """Marshals the toolkit's idempotency key into the job, as an action passing it on would."""

    name = "echo"

    def marshal(self, event: Event, toolkit: Toolkit) -> Payload:
        return Payload(data={"key": toolkit.idempotency_key})


async def test_drafts_keyed_by_a_field_store_each_message_once(tmp_path: Path, client: httpx.AsyncClient) -> None:
    source = Source("sdk", triggers=[HttpTrigger("batch", "/v1/batch", extract=segment_like)])
    sink = Destination("sink", actions=[Echo()])
    async with opened(tmp_path, [source], [sink], [Flow("f", source="sdk", actions=["sink.echo"])],
                      store=sqlite_url(tmp_path)) as runtime, serving(runtime) as gateway:
        first = await client.post(f"{gateway.url}/v1/batch", json={"batch": [
            {"messageId": "m1", "event": "a"}, {"messageId": "m2", "event": "b"}]})
        retried = await client.post(f"{gateway.url}/v1/batch", json={"sentAt": "later", "batch": [
            {"messageId": "m2", "event": "b"}, {"messageId": "m3", "event": "c"}]})
        assert (first.status_code, retried.status_code) == (202, 202), retried.text
        assert "idempotent-replayed" not in retried.headers, "a partial retry is not a replay"
        assert retried.json()["event_ids"][0] == first.json()["event_ids"][1]
        events = await runtime.store.find_events(WhereEvent())
        assert sorted(event.data["messageId"] for event in events) == ["m1", "m2", "m3"]
        jobs = [job for event in events for job in (await runtime.store.get_event(event.id)).jobs]  # type: ignore[union-attr]
        assert sorted((job.idempotency_key, job.data["key"]) for job in jobs) == [
            ("m1", "m1"), ("m2", "m2"), ("m3", "m3")]


async def test_concurrent_retries_store_one_event_and_count_duplicates(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    async with opened(tmp_path, *shop(), store=sqlite_url(tmp_path)) as runtime, serving(runtime) as gateway:
        headers = {"Idempotency-Key": "same"}
        answers = await asyncio.gather(*(
            client.post(f"{gateway.url}{ORDERS}", json={"data": 1}, headers=headers) for _ in range(50)))
        assert {answer.status_code for answer in answers} == {202}
        assert len({answer.json()["event_id"] for answer in answers}) == 1
        assert sum(answer.headers.get("idempotent-replayed") == "true" for answer in answers) == 49
        assert len(await stored_ids(runtime)) == 1
        assert metrics.EVENTS_INGESTED.labels("shop", "orders", "duplicate")._value.get() >= 49
