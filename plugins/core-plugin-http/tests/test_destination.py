"""The webhook destination against a real receiver on loopback that verifies the signatures."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from conftest import NEW, OLD, Receiver
from core.testing import DestinationSuite, make_event, make_job
from hookspecs import CoreError, Destination, Discard, Queue, RetryAfter, Secret, Status, Then, Toolkit

from core_plugin_http import WebhookDestination, retry_after

TOOLKIT = Toolkit(logger=logging.getLogger("test.http"), service="scheduler")


def queue_of(count: int = 1, key: str | None = None) -> Queue:
    event = make_event(source="shop", actions=())
    jobs = [make_job(event, "hooks", "post", data={"n": n}) for n in range(count)]
    for job in jobs:
        job.status, job.attempt, job.idempotency_key = Status.EXECUTING, 1, key
    event.jobs = jobs
    return Queue(events=[event])


async def opened(receiver: Receiver, path: str = "/ok", **options: Any) -> WebhookDestination:
    destination = WebhookDestination(
        "hooks", url=receiver.url(path), secrets=Secret(env="HOOKS_WHSEC"), allow_private=True, **options
    )
    await destination.init(TOOLKIT)
    return destination


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKS_WHSEC", NEW)


async def load(destination: WebhookDestination, queue: Queue) -> list[Then]:
    try:
        result = await destination.actions["post"].load(TOOLKIT, queue)
    finally:
        await destination.shutdown(TOOLKIT)
    assert isinstance(result, list | Then)
    return list(result) if isinstance(result, list) else [result]


async def test_each_job_is_posted_signed_with_its_idempotency_key(receiver: Receiver) -> None:
    thens = await load(await opened(receiver), queue_of(2, key="order-42"))
    assert [then.error for then in thens] == [None, None]
    assert [got["verified"] for got in receiver.got] == [True, True]
    assert {got["headers"]["webhook-id"] for got in receiver.got} == {"order-42"}
    assert sorted(orjson.loads(got["body"])["data"]["n"] for got in receiver.got) == [0, 1]


async def test_without_an_idempotency_key_the_job_id_is_the_webhook_id(receiver: Receiver) -> None:
    queue = queue_of()
    await load(await opened(receiver), queue)
    assert receiver.got[0]["headers"]["webhook-id"] == queue.jobs[0].id


async def test_a_batch_is_one_signed_request_with_a_json_array(receiver: Receiver) -> None:
    queue = queue_of(3)
    (then,) = await load(await opened(receiver, batch=True), queue)
    assert then.error is None and list(then.jobs) == [job.id for job in queue.jobs]
    (got,) = receiver.got
    assert got["verified"] and [item["job_id"] for item in orjson.loads(got["body"])] == list(then.jobs)


@pytest.mark.parametrize("secret", [OLD, NEW])
async def test_during_a_rotation_a_receiver_knowing_either_secret_verifies(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("HOOKS_WHSEC", f"{OLD} {NEW}")
    receiver.secret = secret
    await load(await opened(receiver), queue_of())
    assert receiver.got[0]["verified"]
    assert len(receiver.got[0]["headers"]["webhook-signature"].split()) == 2


async def test_status_classes_become_error_classes(receiver: Receiver) -> None:
    (busy,) = await load(await opened(receiver, "/busy"), queue_of())
    assert isinstance(busy.error, RetryAfter) and busy.error.seconds == 7
    (down,) = await load(await opened(receiver, "/down"), queue_of())
    assert isinstance(down.error, str) and "HTTP 500" in down.error
    (missing,) = await load(await opened(receiver, "/missing"), queue_of())
    assert isinstance(missing.error, Discard) and "HTTP 404" in str(missing.error)
    (moved,) = await load(await opened(receiver, "/moved"), queue_of())
    assert isinstance(moved.error, Discard) and "redirect, not followed" in str(moved.error)
    assert [got["path"] for got in receiver.got] == ["/busy", "/down", "/missing", "/moved"]  # /ok never reached


async def test_a_408_is_retried_and_a_request_past_its_timeout_too(receiver: Receiver) -> None:
    (timeout,) = await load(await opened(receiver, "/timeout"), queue_of())
    assert isinstance(timeout.error, str) and "HTTP 408" in timeout.error, "a 408 was not retried"
    (slow,) = await load(await opened(receiver, "/slow", timeout=0.2), queue_of())
    assert isinstance(slow.error, str) and "Timeout" in slow.error, "a request past its timeout succeeded"


async def test_the_destination_headers_reach_the_receiver_beside_the_signature(receiver: Receiver) -> None:
    await load(await opened(receiver, headers={"authorization": "Bearer partner-token", "x-tenant": "acme"}),
               queue_of())
    (got,) = receiver.got
    assert got["verified"] and got["headers"]["authorization"] == "Bearer partner-token"
    assert got["headers"]["x-tenant"] == "acme" and got["headers"]["content-type"] == "application/json"


async def test_a_connection_error_is_retried_and_shows_no_header(receiver: Receiver) -> None:
    destination = WebhookDestination(
        "hooks", url="http://127.0.0.1:1/in", allow_private=True, headers={"authorization": "Bearer sekrit-token"}
    )
    await destination.init(TOOLKIT)
    (then,) = await load(destination, queue_of())
    assert isinstance(then.error, str) and "ConnectError" in then.error and "sekrit" not in then.error


async def test_the_ssrf_guard_refuses_loopback_without_allow_private(receiver: Receiver) -> None:
    destination = WebhookDestination("hooks", url=receiver.url())
    with pytest.raises(CoreError, match="loopback or link-local address: refused"):
        await destination.init(TOOLKIT)
    assert receiver.got == []


async def test_the_guard_checks_each_connection_too(receiver: Receiver) -> None:
    destination = await opened(receiver)
    destination.options["allow_private"] = False
    assert destination.client is not None
    destination.client._transport._pool._network_backend.allow_private = False  # type: ignore[attr-defined]
    (then,) = await load(destination, queue_of())
    assert isinstance(then.error, str) and "refused" in then.error and receiver.got == []


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("120") == 120
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412420.0) == 60
    assert retry_after("soon") is None and retry_after(None) is None


class TestConformance(DestinationSuite):
    @pytest.fixture
    async def destination(self, receiver: Receiver) -> AsyncIterator[Destination]:
        destination = await opened(receiver)
        yield destination
        await destination.shutdown(TOOLKIT)
