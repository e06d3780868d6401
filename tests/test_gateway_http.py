"""The gateway's HTTP contract, against a running server, real HTTP and the real SQLite store."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import httpx
import orjson
import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from core.errors import CoreError, PipelineError
from core.gateway import Gateway
from core.ready_jobs import decode
from hookspecs import (
    JOBS_TOPIC,
    Action,
    Claim,
    Destination,
    Event,
    EventDraft,
    Flow,
    HttpRequest,
    HttpTrigger,
    Payload,
    Rejected,
    Source,
    Status,
    Toolkit,
    WhereEvent,
)
from tests.gateway_kit import eventually, opened, serving, shop, sqlite_url


async def stored(runtime: object) -> int:
    return len(await runtime.store.find_events(WhereEvent()))  # type: ignore[attr-defined]


async def test_202_comes_after_the_commit(tmp_path: Path, client: httpx.AsyncClient) -> None:
    sources, destinations, flows = shop()
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        sent = {"name": "order.created", "context": {"ip": "1.2.3.4"}, "data": {"id": 7},
                "sent_at": "2024-05-01T12:00:00Z"}
        response = await client.post(f"{gateway.url}/webhooks/orders", json=sent)
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["event_ids"] == [body["event_id"]] and len(body["job_ids"]) == 1
        event = await runtime.store.get_event(body["event_id"])  # readable the moment 202 arrives
        assert event is not None
        assert (event.source, event.name, event.data, event.context) == ("shop", "order.created", {"id": 7},
                                                                         {"ip": "1.2.3.4"})
        assert event.sent_at is not None and event.sent_at.isoformat().startswith("2024-05-01T12:00:00")
        assert [(j.id, j.destination, j.action, j.status) for j in event.jobs] == [
            (body["job_ids"][0], "sink", "keep", Status.ACKNOWLEDGED)
        ]


async def test_event_name_defaults_to_the_trigger(tmp_path: Path, client: httpx.AsyncClient) -> None:
    sources, destinations, flows = shop()
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        response = await client.post(f"{gateway.url}/webhooks/orders", json={"data": 1})
        event = await runtime.store.get_event(response.json()["event_id"])
        assert event is not None and event.name == "orders" and event.context == {}


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not valid JSON"),
    (b"", "empty"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"data": 1, "dat": 2}', "unknown key"),
    (b'{"events": [{"data": 1}, "oops"]}', "events[1]"),
    (b'{"data": 1, "sent_at": "yesterday"}', "ISO 8601"),
])
async def test_bad_json_is_400_and_stores_nothing(
    tmp_path: Path, client: httpx.AsyncClient, body: bytes, message: str
) -> None:
    sources, destinations, flows = shop()
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        response = await client.post(f"{gateway.url}/webhooks/orders", content=body)
        assert response.status_code == 400
        assert message in response.json()["error"]
        assert await stored(runtime) == 0


async def test_an_extractor_that_rejects_is_400(tmp_path: Path, client: httpx.AsyncClient) -> None:
    def extract(request: HttpRequest) -> list[EventDraft]:
        if request.headers.get("x-signature") != "good":
            raise Rejected("bad signature")
        return [EventDraft(data=orjson.loads(request.body), name=request.path_params["kind"],
                           context={"q": request.query.get("q", "")})]

    source = Source("hooks", triggers=[HttpTrigger("signed", "/hooks/{kind}", extract=extract)])
    async with opened(tmp_path, [source]) as runtime, serving(runtime) as gateway:
        refused = await client.post(f"{gateway.url}/hooks/paid", json={"a": 1})
        assert (refused.status_code, refused.json()) == (400, {"error": "bad signature"})
        assert await stored(runtime) == 0
        accepted = await client.post(f"{gateway.url}/hooks/paid?q=x", json={"a": 1}, headers={"x-signature": "good"})
        assert accepted.status_code == 202
        event = await runtime.store.get_event(accepted.json()["event_id"])
        assert event is not None and (event.name, event.data, event.context) == ("paid", {"a": 1}, {"q": "x"})
        assert accepted.json()["job_ids"] == []  # no flow: the event is stored without jobs


async def test_a_body_over_the_limit_is_413(tmp_path: Path, client: httpx.AsyncClient) -> None:
    sources, destinations, flows = shop()
    async with opened(tmp_path, sources, destinations, flows, **{"gateway.max_body_bytes": 1000}) as runtime, \
            serving(runtime) as gateway:
        big = orjson.dumps({"data": "x" * 2000})
        response = await client.post(f"{gateway.url}/webhooks/orders", content=big)
        assert response.status_code == 413 and "1000 bytes" in response.json()["error"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
            for _ in range(4):
                yield b" " * 400
        streamed = await client.post(f"{gateway.url}/webhooks/orders", content=chunks())
        assert streamed.status_code == 413
        assert await stored(runtime) == 0
        small = await client.post(f"{gateway.url}/webhooks/orders", json={"data": "x" * 100})
        assert small.status_code == 202


@pytest.fixture()
def locked_db() -> Iterator[list[sqlite3.Connection]]:
    """Holds at most one SQLite connection with an exclusive lock; released at the end."""
    holders: list[sqlite3.Connection] = []
    yield holders
    for conn in holders:
        conn.rollback()
        conn.close()


async def test_store_unavailable_is_503_never_202(
    tmp_path: Path, client: httpx.AsyncClient, locked_db: list[sqlite3.Connection]
) -> None:
    sources, destinations, flows = shop()
    options = "[options.sqlite]\nbusy_timeout_ms = 100\n"
    async with opened(tmp_path, sources, destinations, flows, options=options, store=sqlite_url(tmp_path)) as runtime, \
            serving(runtime) as gateway:
        url = f"{gateway.url}/webhooks/orders"
        assert (await client.post(url, json={"data": 0})).status_code == 202
        holder = sqlite3.connect(tmp_path / "core.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        locked_db.append(holder)
        single = await client.post(url, json={"data": 1})
        batch = await client.post(url, json={"events": [{"data": 2}, {"data": 3}]})
        for response in (single, batch):
            assert response.status_code == 503, response.text
            assert "nothing was stored" in response.json()["error"]
            assert response.headers["retry-after"] == "1"
        holder.rollback()
        again = await client.post(url, json={"data": 4})
        assert again.status_code == 202
        assert sorted(e.data for e in await runtime.store.find_events(WhereEvent())) == [0, 4]


async def test_a_batch_is_all_or_nothing(tmp_path: Path, client: httpx.AsyncClient) -> None:
    sources, destinations, flows = shop()
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        url = f"{gateway.url}/webhooks/orders"
        bad = await client.post(url, json={"events": [{"data": 1}, {"data": 2, "name": 5}]})
        assert bad.status_code == 400 and "events[1]" in bad.json()["error"]
        assert await stored(runtime) == 0
        good = await client.post(url, json={"events": [{"data": n, "name": f"n{n}"} for n in range(3)]})
        assert good.status_code == 202
        body = good.json()
        assert "event_id" not in body and len(body["event_ids"]) == 3 and len(body["job_ids"]) == 3
        events = await runtime.store.find_events(WhereEvent())
        assert sorted(e.id for e in events) == sorted(body["event_ids"])
        assert sorted(e.name for e in events) == ["n0", "n1", "n2"]


async def test_a_marshal_error_costs_the_job_not_the_event(tmp_path: Path, client: httpx.AsyncClient) -> None:
    sources, destinations, _ = shop()
    flows = [Flow("orders", source="shop", actions=["sink.keep", "sink.picky"])]
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        response = await client.post(f"{gateway.url}/webhooks/orders", json={"data": {"fail": True}})
        assert response.status_code == 202
        body = response.json()
        assert len(body["job_ids"]) == 1
        [error] = body["errors"]
        assert error["action"] == "sink.picky" and error["flow"] == "orders"
        assert error["event_id"] == body["event_id"] and "picky refuses" in error["error"]
        event = await runtime.store.get_event(body["event_id"])
        assert event is not None and [j.action for j in event.jobs] == ["keep"]

        fine = await client.post(f"{gateway.url}/webhooks/orders", json={"data": {"ok": 1}})
        assert "errors" not in fine.json()
        event = await runtime.store.get_event(fine.json()["event_id"])
        assert event is not None
        picky = next(j for j in event.jobs if j.action == "picky")
        assert (picky.data, picky.context) == ({"seen": {"ok": 1}}, {"by": "picky"})


async def test_flow_transform_and_event_filter(tmp_path: Path, client: httpx.AsyncClient) -> None:
    sources, destinations, _ = shop()

    def upper(event: object) -> object:
        event.data = {"v": event.data["v"].upper()}  # type: ignore[attr-defined]
        return event

    flows = [
        Flow("shout", source="shop", actions=["sink.keep"], transform=upper),
        Flow("only-paid", source="shop", trigger="orders", events=["paid"], actions=["sink.picky"]),
    ]
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        response = await client.post(f"{gateway.url}/webhooks/orders", json={"name": "created", "data": {"v": "a"}})
        event = await runtime.store.get_event(response.json()["event_id"])
        assert event is not None and event.data == {"v": "a"}  # the stored event is the one received
        assert [(j.action, j.data) for j in event.jobs] == [("keep", {"v": "A"})]


async def test_realtime_jobs_are_published_after_the_commit(tmp_path: Path, client: httpx.AsyncClient) -> None:
    sources, destinations, _ = shop()
    flows = [Flow("orders", source="shop", actions=["sink.keep", "sink.live"])]
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        assert runtime.pubsub is not None
        subscription = await runtime.pubsub.subscribe(JOBS_TOPIC, group="test")
        response = await client.post(f"{gateway.url}/webhooks/orders", json={"data": 1})
        delivery = await asyncio.wait_for(anext(aiter(subscription)), 10)
        ready = decode(delivery.message)
        await delivery.ack()
        event = await runtime.store.get_event(response.json()["event_id"])
        assert event is not None
        live = [j.id for j in event.jobs if j.action == "live"]
        assert (ready.destination, ready.action, list(ready.job_ids)) == ("sink", "live", live)
        assert ready.event_ids == (event.id,), "the scheduler reads the events while it claims the jobs"
        await subscription.close()


async def test_jobs_of_concurrent_requests_are_all_published(tmp_path: Path, client: httpx.AsyncClient) -> None:
    sources, destinations, _ = shop()
    flows = [Flow("orders", source="shop", actions=["sink.live"])]
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        assert runtime.pubsub is not None
        subscription = await runtime.pubsub.subscribe(JOBS_TOPIC, group="test")
        answers = await asyncio.gather(*(client.post(f"{gateway.url}/webhooks/orders", json={"data": n})
                                         for n in range(20)))
        expected = {job_id for answer in answers for job_id in answer.json()["job_ids"]}
        received: set[str] = set()
        feed = aiter(subscription)
        while received != expected:
            delivery = await asyncio.wait_for(anext(feed), 10)
            received.update(decode(delivery.message).job_ids)
            await delivery.ack()
        await subscription.close()


async def test_a_publish_failure_still_answers_202_and_the_job_stays_claimable(
    tmp_path: Path, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    sources, destinations, _ = shop()
    flows = [Flow("orders", source="shop", actions=["sink.live"])]
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        assert runtime.pubsub is not None
        await runtime.pubsub.close()  # the broker is gone: publish raises PubSubUnavailable
        response = await client.post(f"{gateway.url}/webhooks/orders", json={"data": 1})
        assert response.status_code == 202
        [job_id] = response.json()["job_ids"]
        await eventually(lambda: asyncio.sleep(0, result="1 job(s) not published" in caplog.text))
        claimed = await runtime.store.claim_ids(Claim(owner="test"), [job_id], now=datetime.now(UTC))
        assert [j.id for j in claimed] == [job_id]


async def test_health(tmp_path: Path, client: httpx.AsyncClient) -> None:
    sources, destinations, flows = shop()
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        response = await client.get(f"{gateway.url}/_health")
        assert response.status_code == 200
        assert response.json()["status"] == "ok" and response.json()["store"] == "ok"
        assert (await client.post(f"{gateway.url}/_health")).status_code == 405
        assert (await client.get(f"{gateway.url}/webhooks/orders")).status_code == 405
        assert (await client.get(f"{gateway.url}/nowhere")).status_code == 404
        await runtime.store.close()
        down = await client.get(f"{gateway.url}/_health")
        assert down.status_code == 503 and down.json()["status"] == "unavailable"


async def test_plugin_routes_are_served_and_clashes_refused(tmp_path: Path, client: httpx.AsyncClient) -> None:
    sources, destinations, flows = shop()
    extra = [Route("/_version", lambda request: PlainTextResponse("1.0"))]
    async with opened(tmp_path, sources, destinations, flows, routes=extra) as runtime, \
            serving(runtime) as gateway:
        assert (await client.get(f"{gateway.url}/_version")).text == "1.0"

    clash = [Route("/webhooks/orders", lambda request: PlainTextResponse(""), methods=["POST"])]
    async with opened(tmp_path, sources, destinations, flows, routes=clash) as runtime:
        with pytest.raises(PipelineError) as caught:
            Gateway(runtime)
        message = str(caught.value)
        assert "POST /webhooks/orders" in message
        assert "source 'shop', trigger 'orders'" in message and "plugin 'app'" in message


class Tracked(Source):
    """A source that records its init/shutdown calls, and can fail its init."""

    log: ClassVar[list[str]] = []

    def __init__(self, name: str, *, fail: bool = False) -> None:
        super().__init__(name, triggers=[HttpTrigger("in", f"/{name}")])
        self.fail = fail

    async def init(self, toolkit: Toolkit) -> None:
        if self.fail:
            raise RuntimeError("cannot reach the upstream API")
        self.log.append(f"init {self.name}")

    async def shutdown(self, toolkit: Toolkit) -> None:
        self.log.append(f"shutdown {self.name}")


async def test_an_init_error_stops_start_up_with_its_message(tmp_path: Path) -> None:
    Tracked.log = []
    sources = [Tracked("first"), Tracked("second", fail=True)]
    async with opened(tmp_path, sources) as runtime:
        gateway = Gateway(runtime)
        with pytest.raises(CoreError) as caught:
            await gateway.start()
        assert "source 'second' failed to start" in str(caught.value)
        assert "cannot reach the upstream API" in str(caught.value)
        assert Tracked.log == ["init first", "shutdown first"]
        assert gateway.url == ""  # it never listened


class Later(Action):
    """An async marshal that skips events without an email (no job) and reshapes the rest."""

    name = "later"

    async def marshal(self, event: Event, toolkit: Toolkit) -> Payload | None:
        await asyncio.sleep(0)
        if "email" not in event.data:
            return None
        return Payload(data={"email": event.data["email"], "job": toolkit.job_id}, version="v2")


async def test_an_async_marshal_and_a_skipped_event(tmp_path: Path, client: httpx.AsyncClient) -> None:
    sources, _, _ = shop()
    destinations = [Destination("crm", actions=[Later()])]
    flows = [Flow("orders", source="shop", actions=["crm.later"])]
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        url = f"{gateway.url}/webhooks/orders"
        skipped = await client.post(url, json={"data": {"name": "x"}})
        assert skipped.status_code == 202 and skipped.json()["job_ids"] == []
        kept = await client.post(url, json={"data": {"email": "a@b.c"}})
        [job_id] = kept.json()["job_ids"]
        job = await runtime.store.get_job(job_id)
        assert job is not None and job.data == {"email": "a@b.c", "job": job_id} and job.version == "v2"


async def test_an_extractor_bug_is_500_and_stores_nothing(
    tmp_path: Path, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    def extract(request: HttpRequest) -> list[EventDraft]:
        if request.body == b"raise":
            raise KeyError("signature")
        return [EventDraft(data=1), EventDraft(data=2, context=None)]  # type: ignore[arg-type]

    source = Source("hooks", triggers=[HttpTrigger("buggy", "/hooks", extract=extract)])
    async with opened(tmp_path, [source]) as runtime, serving(runtime) as gateway:
        for body, logged in ((b"raise", "KeyError: 'signature'"), (b"{}", "item 1 returned by the extractor "
                                                                           "has a context that is not a dict")):
            response = await client.post(f"{gateway.url}/hooks", content=body)
            assert response.status_code == 500
            assert "trigger 'buggy': the extractor failed" in response.json()["error"]
            assert logged in caplog.text
        assert await stored(runtime) == 0


async def test_stop_finishes_the_requests_in_flight(tmp_path: Path, client: httpx.AsyncClient) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    class Slow(Action):
        name = "slow"

        async def marshal(self, event: Event, toolkit: Toolkit) -> Payload:
            entered.set()
            await release.wait()
            return Payload(data=event.data)

    sources, _, _ = shop()
    destinations = [Destination("crm", actions=[Slow()])]
    flows = [Flow("orders", source="shop", actions=["crm.slow"])]
    async with opened(tmp_path, sources, destinations, flows) as runtime:
        gateway = Gateway(runtime)
        await gateway.start()
        request = asyncio.create_task(client.post(f"{gateway.url}/webhooks/orders", json={"data": 1}))
        await asyncio.wait_for(entered.wait(), 10)
        stopping = asyncio.create_task(gateway.stop())
        await asyncio.sleep(0.1)
        assert not stopping.done()  # waiting for the request in flight
        release.set()
        response = await asyncio.wait_for(request, 10)
        await asyncio.wait_for(stopping, 30)
        assert response.status_code == 202
        assert await runtime.store.get_event(response.json()["event_id"]) is not None


async def test_unknown_routes_and_methods_answer_json(tmp_path: Path, client: httpx.AsyncClient) -> None:
    """Issue 22, item 10: a 404 or 405 is JSON like every other gateway error; a 404 lists the
    trigger routes."""
    sources, destinations, flows = shop()
    async with opened(tmp_path, sources, destinations, flows) as runtime, serving(runtime) as gateway:
        missing = await client.post(f"{gateway.url}/webhooks/order")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
        assert missing.json() == {"error": "no route POST /webhooks/order", "routes": ["POST /webhooks/orders"]}
        wrong = await client.get(f"{gateway.url}/webhooks/orders")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
        assert wrong.json() == {"error": "/webhooks/orders does not answer GET; it answers POST"}
