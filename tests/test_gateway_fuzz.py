"""A hypothesis fuzz test of the HTTP triggers: random bodies, content types, encodings,
invalid UTF-8, huge numbers, deep nesting, odd methods, paths and credentials, sent as real
HTTP to a gateway on the SQLite store. No answer may be a 5xx, no traceback may be logged."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import logging
import os
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookspecs import ApiKey, Cors, Destination, Flow, HttpTrigger, Secret, Source, StandardWebhook
from tests.gateway_kit import Keep, opened, serving, sqlite_url

SECRETS = {"FUZZ_API_KEY": "fuzz-key", "FUZZ_WHSEC": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
SOURCES = [Source("fuzz", [
    HttpTrigger("plain", "/in", methods=("POST", "PUT")),
    HttpTrigger("keyed", "/keyed", auth=ApiKey(Secret(env="FUZZ_API_KEY")), cors=Cors()),
    HttpTrigger("signed", "/signed", auth=StandardWebhook(Secret(env="FUZZ_WHSEC"))),
    HttpTrigger("param", "/p/{name}"),
])]
PATHS = ["/in", "/keyed", "/signed", "/p/x", "/p/", "/_health", "/metrics", "/", "/in/", "//in", "/p/%00"]


class Recorder(logging.Handler):
    """Every record at WARNING or above, and every record carrying a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR or "Traceback" in record.getMessage():
            self.bad.append(self.format(record))


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway serving the fuzz pipeline from a thread of its own (its own event loop)."""
    tmp_path: Path = tmp_path_factory.mktemp("fuzz")
    ready: list[str] = []
    started, stop = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def run() -> None:
        flows = [Flow("all", source="fuzz", actions=["sink.keep"])]
        async with opened(tmp_path, SOURCES, [Destination("sink", [Keep()])], flows,
                          store=sqlite_url(tmp_path), **{"gateway.max_body_bytes": 65536}) as runtime, \
                serving(runtime) as gateway:
            ready.append(gateway.url)
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    def thread() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # noqa: BLE001 - reported by the fixture
            failure.append(exc)
            started.set()

    os.environ.update(SECRETS)  # read once, when the gateway starts
    worker = threading.Thread(target=thread, daemon=True)
    worker.start()
    assert started.wait(60), "the gateway did not start"
    assert not failure, failure
    try:
        yield ready[0]
    finally:
        stop.set()
        worker.join(60)
        for name in SECRETS:
            os.environ.pop(name, None)


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    handler = Recorder()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


def deep(levels: int, opener: bytes) -> bytes:
    """An event whose data nests ``levels`` arrays or objects."""
    inner = b"[" * levels + b"]" * levels if opener == b"[" else b'{"a":' * levels + b"1" + b"}" * levels
    return b'{"data": ' + inner + b"}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10 ** 40), max_value=10 ** 40)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def _document(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return b"null"


#: ISO 8601 times of any year and offset: some do not exist in UTC (year 1 at +05:00).
times = st.builds(lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
                  st.datetimes(), st.integers(min_value=-1439, max_value=1439))

bodies = st.one_of(
    st.binary(max_size=2048),
    json_values.map(_document),
    json_values.map(lambda v: _document({"data": v})),
    json_values.map(lambda v: _document({"events": [{"data": v}, {"name": "x", "data": v}]})),
    st.fixed_dictionaries({"name": st.text(), "sent_at": st.text() | times, "context": json_values}).map(_document),
    st.integers(min_value=1, max_value=3000).flatmap(lambda n: st.sampled_from([deep(n, b"["), deep(n, b"{")])),
    st.sampled_from([b'{"data": 1' + b"0" * 400 + b"}", b'{"data": 1e999}', b'{"data": -1e-999}',
                     b'{"data": "\xff\xfe"}', b'{"data": "\\ud800"}', b'\xef\xbb\xbf{"data": 1}',
                     b'{"data": 18446744073709551616}', b'{"events": []}', b'{"name": "a\\u0000b"}',
                     b'{"sent_at": "0001-01-01T00:00:00+05:00"}', b'{"events": {}}', b"[]", b"{}"]),
)

ROUTES = [("POST", "/in"), ("PUT", "/in"), ("POST", "/keyed"), ("POST", "/signed"), ("POST", "/p/x")]
odd_routes = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "BREW"]),
    st.one_of(st.sampled_from(PATHS),
              st.text(alphabet="/abcp%._-~:@!$&'()*+,;=", max_size=20).map(lambda p: "/" + p)),
)

requests = st.fixed_dictionaries({
    "route": st.one_of(st.sampled_from(ROUTES), st.sampled_from(ROUTES), st.sampled_from(ROUTES), odd_routes),
    "body": bodies,
    "content_type": st.sampled_from([None, "application/json", "text/plain; charset=latin-1",
                                     "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                     "application/json; charset=utf-16"]),
    "encoding": st.sampled_from([None, "gzip", "deflate", "identity", "br", "gzip, gzip", "lying-gzip"]),
    "auth": st.sampled_from([{}, {"sign": "yes"}, {"sign": "yes"}, {"x-api-key": "fuzz-key"},
                             {"authorization": "Bearer fuzz-key"},
                             {"authorization": "Basic ZnV6ei1rZXk6"}, {"authorization": "Basic !!!"},
                             {"authorization": "Bearer"}, {"webhook-id": "m", "webhook-timestamp": "9" * 30,
                                                           "webhook-signature": "v1,=== v1 ,"},
                             {"webhook-id": "m", "webhook-timestamp": "-1", "webhook-signature": "v1"},
                             {"origin": "https://a.example", "access-control-request-method": "POST",
                              "access-control-request-headers": "x-api-key, \xe9"}]),
})


def signed(body: bytes) -> dict[str, str]:
    """Valid Standard Webhooks headers for ``body`` (a new message id each time)."""
    message_id, stamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(SECRETS["FUZZ_WHSEC"].removeprefix("whsec_"))
    mac = hmac.new(key, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": message_id, "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(mac).decode()}


def encode(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(request=requests)
def test_no_request_gets_a_5xx_or_logs_a_traceback(gateway_url: str, recorder: Recorder,
                                                   request: dict[str, Any]) -> None:
    headers = {**request["auth"]}
    method, path = request["route"]
    if request["content_type"]:
        headers["content-type"] = request["content_type"]
    encoding = request["encoding"]
    if encoding:
        headers["content-encoding"] = "gzip" if encoding == "lying-gzip" else encoding
    body = encode(request["body"], encoding)
    if headers.pop("sign", None):
        headers.update(signed(request["body"]))
    with httpx.Client(timeout=30) as http:
        answer = http.request(method, gateway_url + path, content=body,
                              headers={k: v.encode("latin-1", "replace") for k, v in headers.items()})
    assert answer.status_code < 500, (request, answer.status_code, answer.text[:500])
    assert not recorder.bad, recorder.bad
