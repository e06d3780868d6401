"""The ``$management`` request/response node: one function per operation the stand-in serves,
looked up in :data:`OPERATIONS`; any other operation is answered 501 (not implemented)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proton import Array, Data, Message, symbol, timestamp

from _standin.broker import Broker

LOCK_LOST = "com.microsoft:message-lock-lost"


@dataclass(frozen=True)
class Request:
    """A management request: its operation, its map body (string keys) and the lock tokens in it."""

    operation: str
    body: dict[str, Any]
    tokens: list[uuid.UUID]


@dataclass(frozen=True)
class Reply:
    """What to answer: a status code and description, a body, and further application properties."""

    status: int
    description: str
    body: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def _lock_lost(description: str) -> Reply:
    return Reply(410, description, extra={"errorCondition": symbol(LOCK_LOST)})


def renew_lock(broker: Broker, request: Request) -> Reply:
    """``com.microsoft:renew-lock``: extend each lock, answering the new expirations (410 at the
    first lock that is gone; those before it stay renewed)."""
    expirations = []
    for token in request.tokens:
        lock = broker.find_lock(token)
        if lock is None:
            return _lock_lost("The lock supplied is invalid. Either the lock expired, or the message has already "
                              "been removed from the queue.")
        expirations.append(timestamp(int(broker.renew(lock) * 1000)))
    return Reply(200, "OK", {"expirations": Array(0, Data.TIMESTAMP, *expirations)})


def update_disposition(broker: Broker, request: Request) -> Reply:
    """``com.microsoft:update-disposition``: settle every lock with ``disposition-status`` (and
    the dead-letter reason), or none if one of them is gone (410)."""
    locks = [broker.find_lock(token) for token in request.tokens]
    if any(lock is None for lock in locks):
        return _lock_lost("The lock supplied is invalid.")
    body = request.body
    for lock in locks:
        assert lock is not None
        broker.settle(lock, str(body.get("disposition-status", "")), str(body.get("deadletter-reason", "")),
                      str(body.get("deadletter-description", "")))
    return Reply(200, "OK", {})


#: The operations served, by the ``operation`` application property of the request.
OPERATIONS: dict[str, Callable[[Broker, Request], Reply]] = {
    "com.microsoft:renew-lock": renew_lock,
    "com.microsoft:update-disposition": update_disposition,
}


def _elements(value: Any) -> list[Any]:
    """The values of an AMQP array or list (or none)."""
    if value is None:
        return []
    return list(getattr(value, "elements", value))


def _token(value: Any) -> uuid.UUID:
    """A lock token as the SDK sends it: a UUID, its 16 bytes (little-endian), or its text."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, bytes):
        return uuid.UUID(bytes_le=value)
    return uuid.UUID(str(value))


def parse(message: Message) -> Request:
    """The request a management message carries."""
    props: dict[Any, Any] = message.properties or {}
    raw = message.body if isinstance(message.body, dict) else {}
    body = {str(k): v for k, v in raw.items()}
    return Request(str(props.get("operation", "")), body, [_token(t) for t in _elements(body.get("lock-tokens"))])


def handle(broker: Broker, message: Message) -> Reply:
    """Serve the management request ``message``."""
    request = parse(message)
    operation = OPERATIONS.get(request.operation)
    if operation is None:
        return Reply(501, f"operation {request.operation!r} is not served by the stand-in",
                     extra={"errorCondition": symbol("amqp:not-implemented")})
    return operation(broker, request)
