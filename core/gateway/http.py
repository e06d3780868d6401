"""The HTTP contract of a trigger's route, as a small ASGI app (no per-request framework
objects: this is the ingest hot path).

- the trigger's ``auth`` refusing -> ``401`` (missing) / ``403`` (wrong) / ``409`` (a replayed
  webhook); over the client's rate (``gateway.rate_limit``) -> ``429`` with ``Retry-After``;
- body (decompressed, for ``Content-Encoding: gzip`` / ``deflate``) over
  ``gateway.max_body_bytes`` -> ``413``; an unknown encoding -> ``415``;
- bad JSON, nesting over ``gateway.max_json_depth``, a value the store cannot write as JSON,
  or an extractor raising :class:`~hookspecs.Rejected` / ``ValueError`` -> ``400`` with a
  message, nothing stored;
- the store failing -> ``503`` with ``Retry-After``, never ``202``;
- otherwise ``202 {"event_ids": [...], "job_ids": [...]}`` (one event: also ``"event_id"``;
  marshal failures: ``"errors"``), sent only once the events and jobs are committed.

Idempotency (the IETF ``Idempotency-Key`` draft): the header's key (or a draft's own) makes
the store keep one event per key within ``gateway.idempotency_window``. A retry answers
``202`` with the original ids and ``Idempotent-Replayed: true``; the key reused with another
body answers ``422``, nothing stored; a key that is empty or over
:data:`MAX_KEY_LENGTH` characters answers ``400``.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import time
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson

from core.gateway.auth import Check, Denied, check_for
from core.gateway.body import BadEncoding, Disconnected, Receive, Scope, Send, TooLarge, read_body
from core.gateway.cors import CorsPolicy
from core.gateway.drafts import checked, drafts_from_json
from core.gateway.ingest import Ingestor
from core.gateway.ratelimit import RateLimit
from core.observability import metrics, tracing
from hookspecs import EventDraft, HttpRequest, HttpTrigger, Rejected, StoreUnavailable

__all__ = ["Limits", "Receive", "Scope", "Send", "TriggerEndpoint"]

log = logging.getLogger("core.gateway")
_JSON = (b"content-type", b"application/json")
_REPLAYED = (b"idempotent-replayed", b"true")
#: The longest idempotency key (the store's key column).
MAX_KEY_LENGTH = 255


async def respond(send: Send, status: int, document: Any, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Send ``document`` as a JSON response."""
    body = orjson.dumps(document)
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [_JSON, (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})


def error(message: str) -> dict[str, str]:
    """The body of every error response."""
    return {"error": message}


def idempotency_key(scope: Scope, drafts: Sequence[EventDraft]) -> str | None:
    """The request's ``Idempotency-Key`` (an RFC 8941 string's quotes removed), checked with
    the drafts' own keys; :class:`~hookspecs.Rejected` for an empty or too long one."""
    key = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"idempotency-key"), None)
    if key is not None:
        key = key.strip()
        if len(key) >= 2 and key[0] == key[-1] == '"':
            key = key[1:-1]
        _check_key(key, "the Idempotency-Key header")
    for index, draft in enumerate(drafts):
        if draft.idempotency_key is not None:
            _check_key(draft.idempotency_key, f"the idempotency key of event {index}")
    return key


def _check_key(key: Any, what: str) -> None:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise Rejected(f"{what} must be a string of 1 to {MAX_KEY_LENGTH} characters, such as a UUID")


@dataclass(frozen=True, slots=True)
class Limits:
    """What the configuration allows every HTTP trigger."""

    max_body_bytes: int
    max_json_depth: int
    rate: RateLimit | None = None


class TriggerEndpoint:
    """Serves one HTTP trigger: authenticate, limit, read, extract, ingest, answer."""

    def __init__(self, ingestor: Ingestor, source: str, trigger: HttpTrigger, limits: Limits) -> None:
        self.ingestor = ingestor
        self.source = source
        self.trigger = trigger
        self.max_body_bytes = min(limits.max_body_bytes, trigger.max_body_bytes or limits.max_body_bytes)
        self.limit_name = ("gateway.max_body_bytes" if self.max_body_bytes == limits.max_body_bytes
                           else "this trigger's max_body_bytes")
        self.max_json_depth = limits.max_json_depth
        self.rate = limits.rate
        self.where = f"source {source!r}, trigger {trigger.name!r}"
        self.check: Check | None = None if trigger.auth is None else check_for(trigger.auth, self.where)
        self.cors = None if trigger.cors is None else CorsPolicy(trigger.cors, trigger.methods)
        self._rejected = metrics.child(metrics.EVENTS_INGESTED, source, trigger.name, "rejected")
        self._failed = metrics.child(metrics.EVENTS_INGESTED, source, trigger.name, "failed")
        self._latency: dict[int, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        code = await (self._traced(scope, receive, send) if tracing.ON else self._serve(scope, receive, send))
        latency = self._latency.get(code)
        if latency is None:
            latency = self._latency[code] = metrics.child(
                metrics.REQUEST_DURATION, self.source, self.trigger.name, str(code))
        latency.observe(time.perf_counter() - started)

    async def _traced(self, scope: Scope, receive: Receive, send: Send) -> int:
        """:meth:`_serve` in a server span continuing the request's ``traceparent``, if any."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                   if k in (b"traceparent", b"tracestate")}
        with tracing.tracer().start_as_current_span(
            f"{scope['method']} {self.trigger.path}", context=tracing.context_of(headers),
            kind=tracing.SpanKind.SERVER,
            attributes={"http.request.method": scope["method"], "url.path": scope["path"],
                        "core.source": self.source, "core.trigger": self.trigger.name},
        ) as span:
            code = await self._serve(scope, receive, send)
            span.set_attribute("http.response.status_code", code)
            return code

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Answer one request; the status code sent (0: the client went away)."""
        received_at = datetime.now(UTC)
        check, message_id = self.check, None
        headers = dict(scope["headers"]) if check or self.cors or self.rate else {}
        if self.cors is not None:
            send = _with_headers(send, self.cors.answer_headers(headers.get(b"origin")))
        try:
            client = None if check is None else check.client(headers)
            if self.rate is not None:
                wait = self.rate.wait(client or _address(scope), time.monotonic())
                if wait:
                    return await self._refuse(send, 429, f"too many requests from this client (gateway.rate_limit"
                                              f" = {self.rate.rate:g}/s); retry in {wait} s",
                                              [(b"retry-after", str(wait).encode())])
            body = await read_body(scope, receive, self.max_body_bytes)
            if check is not None and check.needs_body:
                message_id = check.verify(headers, body)
        except Denied as denied:
            log.debug("%s: answered %d: %s", self.where, denied.status, denied.message)
            return await self._refuse(send, denied.status, denied.message, denied.headers)
        except TooLarge:
            return await self._refuse(send, 413, f"the request body is larger than {self.max_body_bytes} bytes "
                                      f"({self.limit_name}); split it into smaller batches")
        except BadEncoding as exc:
            return await self._refuse(send, exc.status, str(exc))
        except Disconnected:
            return 0
        code = 0
        try:
            code = await self._ingest(scope, body, received_at, send)
        finally:
            if message_id is not None and code != 202 and check is not None:
                check.release(message_id)  # not stored: the sender's retry of this message must pass
        return code

    async def _respond(self, send: Send, status: int, document: dict[str, Any],
                       headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Send the answer, reshaped by the trigger's ``answer`` if it has one (if that raises,
        the gateway's own answer is sent and the error logged)."""
        answer = self.trigger.answer
        if answer is not None:
            try:
                status, document = answer(status, document)
            except Exception:
                log.exception("%s: its answer() failed; the gateway's own answer was sent", self.where)
        await respond(send, status, document, headers)

    async def _refuse(self, send: Send, status: int, message: str,
                      headers: Sequence[tuple[bytes, bytes]] = ()) -> int:
        self._rejected.inc()
        await self._respond(send, status, error(message), headers)
        return status

    async def _ingest(self, scope: Scope, body: bytes, received_at: datetime, send: Send) -> int:
        """Extract and store the body's events; the status code sent."""
        try:
            drafts = await self._extract(scope, body)
            key = idempotency_key(scope, drafts)
        except (Rejected, ValueError) as exc:
            return await self._refuse(send, 400, str(exc) or type(exc).__name__)
        except Exception:
            self._failed.inc()
            log.exception("%s: the extractor failed", self.where)
            await self._respond(send, 500, error(f"{self.where}: the extractor failed; see the gateway's log"))
            return 500
        try:
            done = await self.ingestor.ingest(
                self.source, self.trigger.name, drafts, received_at=received_at, idempotency_key=key,
                fingerprint=None if key is None else hashlib.sha256(body).hexdigest())
        except Rejected as exc:  # a value the store cannot write: the sender's error, not an outage
            return await self._refuse(send, 400, str(exc))
        except StoreUnavailable as exc:
            self._failed.inc(len(drafts))
            log.warning("%s: answered 503: %s", self.where, exc)
            await self._respond(send, 503, error(f"the store is unavailable, nothing was stored; retry later ({exc})"),
                          [(b"retry-after", b"1")])
            return 503
        conflict = done.conflict
        if conflict is not None:
            await self._respond(send, 422, {**error(
                f"the idempotency key {conflict.key!r} was used for a different request (event "
                f"{conflict.original_id}); nothing was stored: use a new key for a new request"),
                "event_id": conflict.original_id})
            return 422
        ids = done.event_ids
        answer: dict[str, Any] = {"event_ids": ids, "job_ids": done.job_ids}
        if len(ids) == 1:
            answer["event_id"] = ids[0]
        if done.errors:
            answer["errors"] = done.errors
        await self._respond(send, 202, answer, [_REPLAYED] if done.replayed else ())
        return 202

    async def _extract(self, scope: Scope, body: bytes) -> Sequence[EventDraft]:
        extract = self.trigger.extract
        if extract is None:
            return drafts_from_json(body, self.max_json_depth)
        request = HttpRequest(
            method=scope["method"],
            path=scope["path"],
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            query=dict(parse_qsl(scope["query_string"].decode("latin-1"))),
            body=body,
            path_params={k: str(v) for k, v in scope.get("path_params", {}).items()},
        )
        drafts: Any = extract(request)
        if inspect.isawaitable(drafts):
            drafts = await drafts
        return checked(drafts, self.where)


def _address(scope: Scope) -> str:
    """The client's address, its identity for the rate limit when it sends no API key."""
    client = scope.get("client")
    return f"addr:{client[0]}" if client else "addr:?"


def _with_headers(send: Send, headers: Sequence[tuple[bytes, bytes]]) -> Send:
    """``send`` adding ``headers`` to the response's start."""
    if not headers:
        return send

    async def sending(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message["headers"], *headers]
        await send(message)

    return sending
