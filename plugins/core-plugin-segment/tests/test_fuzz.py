"""A hypothesis fuzz test of the Segment paths of a real gateway process: random messages
(odd types, ids, times, huge numbers, deep nesting), random bytes, encodings and credentials.
No answer may be a 5xx, every refusal is Segment's error shape, and the log holds no traceback."""

from __future__ import annotations

import gzip
import json
import string
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import WRITE_KEY
from core.testing import Deployment
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

PATHS = [f"/v1/{kind}" for kind in ("track", "identify", "page", "screen", "group", "alias", "batch", "import")]
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False), st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8), inner, max_size=3), max_leaves=20)
fields = st.sampled_from(["type", "userId", "anonymousId", "event", "messageId", "timestamp", "sentAt",
                          "context", "properties", "traits", "groupId", "previousId", "name"])
messages = st.dictionaries(fields, st.one_of(values, st.sampled_from(
    ["track", "identify", "alias", "2024-05-01T12:00:00Z", "not a time", ""]), st.text(string.ascii_letters)))
documents = st.one_of(messages, st.builds(lambda batch, extra: {"batch": batch, **extra},
                                          st.one_of(st.lists(messages, max_size=4), values),
                                          st.dictionaries(st.sampled_from(["context", "sentAt", "integrations"]),
                                                          values, max_size=2)))
bodies = st.one_of(documents.map(lambda d: json.dumps(d).encode()), st.binary(max_size=200),
                   st.integers(1, 3000).map(lambda depth: b'{"batch": [' + b"[" * depth + b"]" * depth + b"]}"))
credentials = st.sampled_from([(WRITE_KEY, ""), ("", WRITE_KEY), ("wrong", ""), None])


@pytest.fixture(scope="module")
def http(gateway: Deployment) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield client


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), body=bodies, compress=st.booleans(), auth=credentials)
def test_no_5xx(http: httpx.Client, path: str, body: bytes, compress: bool, auth: Any) -> None:
    headers = {"content-type": "application/json"}
    if compress:
        body, headers["content-encoding"] = gzip.compress(body), "gzip"
    answer = http.post(path, content=body, headers=headers, auth=auth)
    assert answer.status_code < 500, answer.text
    document = answer.json()
    if answer.status_code == 200:
        assert document == {"success": True}
    else:
        assert document["success"] is False and document["code"] and document["message"], document


def test_no_traceback_in_the_log(gateway: Deployment) -> None:
    assert "Traceback" not in gateway.logs()
