"""Segment messages to event drafts: one call (``/v1/track``...) or a batch (``/v1/batch``).

Each message becomes one draft: its name is the message's type (``track``, ``identify``...),
its data the whole message except ``sentAt`` and ``writeKey``, its context the message's
``context`` (over the batch's), its ``sent_at`` the message's ``sentAt`` (else the batch's,
else ``timestamp``), its idempotency key the ``messageId``. ``sentAt`` is left out of the data
because an SDK sets it anew on every retry: the data is what makes a retry a retry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from hookspecs import EventDraft, HttpRequest, Rejected

#: The call types of the Segment tracking API (each is also a ``/v1/<type>`` path).
CALLS = ("track", "identify", "page", "screen", "group", "alias")
#: Segment's limit on one call (and on each message of a batch).
MAX_CALL_BYTES = 32 * 1024
#: Segment's limit on one batch request.
MAX_BATCH_BYTES = 500 * 1024
#: Fields a call type needs besides a user (a non-empty string each).
REQUIRED = {"track": ("event",), "group": ("groupId",), "alias": ("previousId", "userId")}
#: Keys of a message that are not stored in the event's data.
DROPPED = ("sentAt", "writeKey")


def _document(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; :class:`Rejected` otherwise."""
    if not body.strip():
        raise Rejected("the body is empty: send a JSON object (a Segment message)")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Rejected(f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise Rejected(f"the body must be a JSON object, not {type(document).__name__}")
    return document


def _time(value: Any, what: str) -> datetime | None:
    """An ISO 8601 time (UTC when it has no zone); :class:`Rejected` for anything else."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise Rejected(f"{what} must be an ISO 8601 time such as 2024-05-01T12:00:00Z, not {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _present(value: Any) -> bool:
    return (isinstance(value, str) and bool(value.strip())) or (isinstance(value, int | float)
                                                                 and not isinstance(value, bool))


def draft(message: Any, kind: str | None, where: str, batch: dict[str, Any] | None = None) -> EventDraft:
    """One message as a draft; ``kind`` is the call type a ``/v1/<type>`` path fixes (``None``:
    the message's ``type``, in a batch); ``batch`` the batch's own ``context``, ``sentAt``..."""
    if not isinstance(message, dict):
        raise Rejected(f"{where} must be a JSON object (a Segment message), not {type(message).__name__}")
    kind = kind or message.get("type")
    if kind not in CALLS:
        raise Rejected(f"{where}: type {message.get('type')!r} is not one of {', '.join(CALLS)}")
    batch = batch or {}
    if kind != "alias" and not (_present(message.get("userId")) or _present(message.get("anonymousId"))):
        raise Rejected(f"{where}: a {kind} call needs a userId or an anonymousId")
    missing = [name for name in REQUIRED.get(kind, ()) if not _present(message.get(name))]
    if missing:
        raise Rejected(f"{where}: a {kind} call needs {' and '.join(missing)}")
    context = message.get("context", {})
    if not isinstance(context, dict) or not isinstance(batch.get("context", {}), dict):
        raise Rejected(f"{where}: context must be a JSON object")
    message_id = message.get("messageId")
    if message_id is not None and not isinstance(message_id, str):
        raise Rejected(f"{where}: messageId must be a string, such as a UUID")
    timestamp = _time(message.get("timestamp"), f"{where}: timestamp")
    sent_at = _time(message.get("sentAt"), f"{where}: sentAt") or _time(batch.get("sentAt"), "the batch's sentAt")
    data = {key: value for key, value in message.items() if key not in DROPPED}
    data["type"] = kind
    if "integrations" in batch:
        data.setdefault("integrations", batch["integrations"])
    if "context" in batch:
        data["context"] = {**batch["context"], **context}
    return EventDraft(name=kind, data=data, context=data.get("context", {}), sent_at=sent_at or timestamp,
                      idempotency_key=message_id)


def call(kind: str) -> Callable[[HttpRequest], list[EventDraft]]:
    """The extractor of ``/v1/<kind>``: the body is one message (its ``type`` is ``kind``)."""

    def extract(request: HttpRequest) -> list[EventDraft]:
        return [draft(_document(request.body), kind, "the message")]

    return extract


def batch(request: HttpRequest) -> list[EventDraft]:
    """The extractor of ``/v1/batch`` and ``/v1/import``: ``{"batch": [messages], "context"?,
    "integrations"?, "sentAt"?}``; each message at most :data:`MAX_CALL_BYTES`."""
    document = _document(request.body)
    messages = document.get("batch")
    if not isinstance(messages, list) or not messages:
        raise Rejected('a batch is {"batch": [message, ...]} with at least one message')
    shared: dict[str, Any] = {key: document[key] for key in ("context", "integrations", "sentAt") if key in document}
    drafts = []
    for index, message in enumerate(messages):
        try:
            size = len(orjson.dumps(message))
        except orjson.JSONEncodeError:  # more levels than JSON is written with (the store would refuse it too)
            raise Rejected(f"batch[{index}] is nested deeper than 254 levels of arrays and objects; "
                           "flatten it") from None
        if size > MAX_CALL_BYTES:
            raise Rejected(f"batch[{index}] is {size} bytes: a message may have at most {MAX_CALL_BYTES} bytes")
        drafts.append(draft(message, None, f"batch[{index}]", shared))
    return drafts
