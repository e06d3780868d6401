"""Read a request body, decompressing ``Content-Encoding: gzip`` / ``deflate`` as it streams in.

The limit applies to the decompressed size: the decompressor is never asked for more than
the bytes still allowed, so a gzip bomb costs at most ``limit`` bytes of memory and stops
with :class:`TooLarge` as soon as it passes the limit.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: ``wbits`` of :func:`zlib.decompressobj` per encoding: gzip; zlib-wrapped deflate (RFC 9110).
_WBITS = {b"gzip": 16 + zlib.MAX_WBITS, b"x-gzip": 16 + zlib.MAX_WBITS, b"deflate": zlib.MAX_WBITS}


class TooLarge(Exception):
    """The request body (decompressed) is over the configured limit."""


class Disconnected(Exception):
    """The client went away before sending its whole body: there is no one to answer."""


class BadEncoding(Exception):
    """The body's ``Content-Encoding`` is not supported (``415``) or the body does not decode (``400``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _decompressor(scope: Scope) -> Any:
    """A zlib decompressor for the request's ``Content-Encoding``, or ``None`` for identity."""
    encoding = b""
    for name, value in scope["headers"]:
        if name == b"content-encoding":
            encoding = value.strip().lower()
    if encoding in (b"", b"identity"):
        return None
    wbits = _WBITS.get(encoding)
    if wbits is None:
        raise BadEncoding(415, f"Content-Encoding {encoding.decode('latin-1')!r} is not supported; "
                               "send the body as it is, or gzip or deflate it")
    return zlib.decompressobj(wbits)


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole (decompressed) request body; :class:`TooLarge` as soon as it passes ``limit``."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise TooLarge
    decompressor = _decompressor(scope)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        if decompressor is not None:
            chunk = _inflate(decompressor, chunk, limit - size, final=not more)
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not more:
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _inflate(decompressor: Any, data: bytes, allowed: int, *, final: bool) -> bytes:
    """Decompress ``data``, producing at most ``allowed + 1`` bytes (one more means: too large)."""
    try:
        out = decompressor.decompress(data, allowed + 1)
        if len(out) > allowed:
            raise TooLarge  # the rest is left in the decompressor's unconsumed tail, never inflated
        if final:
            out += decompressor.flush()
            if not decompressor.eof:
                raise BadEncoding(400, "the compressed body is truncated (Content-Encoding)")
    except zlib.error as exc:
        raise BadEncoding(400, f"the body does not decompress as its Content-Encoding says: {exc}") from None
    return out  # type: ignore[no-any-return]
