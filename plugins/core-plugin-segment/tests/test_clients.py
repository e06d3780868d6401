"""Real analytics clients, through their own HTTP code, against a real gateway process:
Segment's ``segment-analytics-python`` (sync calls, a queued batch, gzip, a retried batch)
and RudderStack's ``rudder-sdk-python``."""

from __future__ import annotations

from typing import Any

import pytest
import rudderstack.analytics as rudder
from conftest import OTHER_KEY, WRITE_KEY, events
from core.testing import Deployment
from segment.analytics import Client
from segment.analytics.request import APIError, post

pytestmark = pytest.mark.slow


def by_message(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {event["data"]["messageId"]: event for event in found}


def test_track_and_identify_are_stored_with_their_fields(gateway: Deployment) -> None:
    client = Client(WRITE_KEY, host=gateway.url, sync_mode=True, gzip=True)
    client.track("user-1", "Order Completed", {"total": 99.5, "currency": "EUR"},
                 context={"ip": "203.0.113.9"}, message_id="sdk-track-1")
    client.identify("user-1", {"email": "ada@example.com", "plan": "pro"}, message_id="sdk-identify-1")
    found = by_message(events(gateway, "--source", "web"))
    track, identify = found["sdk-track-1"], found["sdk-identify-1"]
    assert track["name"] == "track" and identify["name"] == "identify"
    assert track["data"]["event"] == "Order Completed"
    assert track["data"]["properties"] == {"total": 99.5, "currency": "EUR"}
    assert track["data"]["userId"] == "user-1" and track["data"]["timestamp"]
    assert track["context"]["ip"] == "203.0.113.9"
    assert track["context"]["library"]["name"] == "analytics-python"
    assert track["sent_at"] is not None
    assert "sentAt" not in track["data"] and "writeKey" not in track["data"]
    assert identify["data"]["traits"] == {"email": "ada@example.com", "plan": "pro"}


def test_a_queued_batch_is_stored(gateway: Deployment) -> None:
    errors: list[Exception] = []
    client = Client(OTHER_KEY, host=gateway.url, upload_size=50, on_error=lambda e, batch: errors.append(e))
    for i in range(3):
        client.track(anonymous_id="anon-7", event="Viewed", properties={"i": i}, message_id=f"queued-{i}")
    client.page(anonymous_id="anon-7", name="Home", message_id="queued-page")
    client.flush()
    client.join()
    assert errors == []
    found = by_message(events(gateway, "--source", "web"))
    assert [found[f"queued-{i}"]["data"]["properties"] for i in range(3)] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert found["queued-page"]["name"] == "page" and found["queued-page"]["data"]["name"] == "Home"


def test_a_retried_batch_is_not_stored_twice(gateway: Deployment) -> None:
    offline = Client(WRITE_KEY, send=False)  # builds the messages as the SDK sends them
    batch = [offline.track(f"user-{i}", "Signed Up", {"n": i}, message_id=f"retry-{i}")[1] for i in range(5)]
    before = len(events(gateway))
    first = post(WRITE_KEY, host=gateway.url, batch=batch)
    again = post(WRITE_KEY, host=gateway.url, gzip=True, batch=batch)  # a new sentAt, gzip: still a retry
    assert first.status_code == again.status_code == 200 and again.json() == {"success": True}
    found = events(gateway)
    assert len(found) == before + 5
    assert sorted(e["data"]["messageId"] for e in found if e["data"]["messageId"].startswith("retry-")) == [
        f"retry-{i}" for i in range(5)]


def test_a_wrong_write_key_is_refused_by_the_client(gateway: Deployment) -> None:
    client = Client("wk_not_a_key", host=gateway.url, sync_mode=True)
    with pytest.raises(APIError) as refused:
        client.track("user-1", "Nope")
    assert (refused.value.status, refused.value.code) == (403, "forbidden")
    mobile = Client("wk_mobile_1", host=gateway.url, sync_mode=True)  # a key of another source
    with pytest.raises(APIError):
        mobile.track("user-1", "Nope")
    Client("wk_mobile_1", host=f"{gateway.url}/mobile", sync_mode=True).track("user-2", "Opened", message_id="m-1")
    assert [e["data"]["messageId"] for e in events(gateway, "--source", "mobile")] == ["m-1"]


def test_rudderstack_client(gateway: Deployment) -> None:
    client = rudder.Client(WRITE_KEY, host=gateway.url, sync_mode=True)
    client.track("user-9", "Cart Viewed", {"items": 2}, message_id="rudder-1")
    client.identify("user-9", {"name": "Grace"}, message_id="rudder-2")
    found = by_message(events(gateway, "--source", "web"))
    assert found["rudder-1"]["name"] == "track" and found["rudder-1"]["data"]["properties"] == {"items": 2}
    assert found["rudder-2"]["context"]["traits"] == {"name": "Grace"}  # RudderStack sends them there
    assert found["rudder-1"]["context"]["library"]["name"] == "analytics-python"  # what RudderStack's fork sends
