"""CORS of the HTTP triggers that declare ``cors=``: the headers of their answers, and the
preflight ``OPTIONS`` of their paths.

A path's preflight is answered for every trigger on it that declares CORS: the requested
method picks the trigger. An origin, method or header not allowed is a ``403`` saying which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from core.gateway.body import Receive, Scope, Send
from hookspecs import Cors

Header = tuple[bytes, bytes]


class CorsPolicy:
    """One trigger's CORS: the ``Access-Control-*`` headers of its answers and its preflight."""

    def __init__(self, cors: Cors, methods: Sequence[str]) -> None:
        self.any_origin = "*" in cors.origins
        self.origins = frozenset(o.encode("latin-1") for o in cors.origins)
        self.methods = tuple(cors.methods or methods)
        self.headers = frozenset(cors.headers)
        self._preflight: list[Header] = [
            (b"access-control-allow-methods", ", ".join(self.methods).encode()),
            (b"access-control-allow-headers", ", ".join(cors.headers).encode("latin-1")),
            (b"access-control-max-age", str(cors.max_age).encode()),
        ]

    def allowed(self, origin: bytes) -> bytes | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or ``None`` if not allowed."""
        if self.any_origin:
            return b"*"
        return origin if origin.rstrip(b"/") in self.origins else None

    def answer_headers(self, origin: bytes | None) -> list[Header]:
        """Headers added to an answer to a request from ``origin``."""
        if origin is None:
            return []
        value = self.allowed(origin)
        return [] if value is None else [(b"access-control-allow-origin", value), (b"vary", b"Origin")]

    def preflight(self, origin: bytes, headers: bytes) -> tuple[int, list[Header], str]:
        """Status, headers and (on refusal) the reason of a preflight from ``origin`` asking for ``headers``."""
        value = self.allowed(origin)
        if value is None:
            return 403, [(b"vary", b"Origin")], f"origin {origin.decode('latin-1')!r} is not allowed"
        asked = {h.strip().lower() for h in headers.decode("latin-1").split(",") if h.strip()}
        refused = sorted(asked - self.headers)
        if refused:
            allowed = ", ".join(sorted(self.headers))
            return 403, [], f"request header(s) {', '.join(refused)} not allowed; allowed: {allowed}"
        return 204, [(b"access-control-allow-origin", value), (b"vary", b"Origin"), *self._preflight], ""


class Preflight:
    """The ``OPTIONS`` route of one path whose triggers declare CORS."""

    def __init__(self, path: str, policies: Mapping[str, CorsPolicy]) -> None:
        self.path = path
        self.policies = dict(policies)
        self.allow = ", ".join(sorted({*policies, "OPTIONS"})).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        origin, method = headers.get(b"origin"), headers.get(b"access-control-request-method")
        extra: list[Header] = [(b"allow", self.allow)]
        if origin is None or method is None:
            await _answer(send, 204, None, extra)  # a plain OPTIONS: what the path answers
            return
        policy = self.policies.get(method.decode("latin-1").upper())
        if policy is None:
            reason = f"{self.path} does not answer {method.decode('latin-1')} from other origins"
            await _answer(send, 403, reason, extra)
            return
        status, cors, reason = policy.preflight(origin, headers.get(b"access-control-request-headers", b""))
        await _answer(send, status, reason or None, extra + cors)


async def _answer(send: Send, status: int, reason: str | None, headers: list[Header]) -> None:
    body = b"" if reason is None else orjson.dumps({"error": reason})
    start = [(b"content-length", str(len(body)).encode()), *headers]
    if body:
        start.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
