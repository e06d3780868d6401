"""The default extractor of HTTP and subscription triggers: a JSON body to event drafts.

One event is ``{"name"?, "context"?, "data"?, "sent_at"?}``; a batch is
``{"events": [ {…}, {…} ]}`` (the seeds' sub-events), stored all or nothing. Anything else
is refused with :class:`~hookspecs.Rejected`, whose message says what is wrong and where.

A document nested deeper than ``max_depth`` arrays and objects is refused too: the store writes
JSON with orjson, which refuses more than 254 levels, so such an event could never be stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from hookspecs import EventDraft, Rejected

FIELDS = frozenset({"name", "context", "data", "sent_at"})

#: Default of ``gateway.max_json_depth``: levels of nested arrays and objects a body may have.
MAX_DEPTH = 128


def drafts_from_json(body: bytes, max_depth: int = MAX_DEPTH) -> list[EventDraft]:
    """Decode ``body`` into drafts; :class:`Rejected` for bad JSON, a bad shape or too deep nesting."""
    if not body or body.isspace():
        raise Rejected('the body is empty: send a JSON object such as {"data": {...}}')
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise _too_deep(max_depth) from None
        raise Rejected(f"the body is not valid JSON: {exc}") from None
    if body.count(b"[") + body.count(b"{") > max_depth and depth(document) > max_depth:
        raise _too_deep(max_depth)
    if not isinstance(document, dict):
        raise Rejected(f"the body must be a JSON object, not {_kind(document)}")
    if "events" in document:
        if set(document) != {"events"}:
            raise Rejected('a batch is {"events": [...]} with no other key')
        items = document["events"]
        if not isinstance(items, list) or not items:
            raise Rejected('"events" must be a non-empty list of event objects')
        return [_draft(item, f"events[{i}]") for i, item in enumerate(items)]
    return [_draft(document, "the body")]


def _too_deep(limit: int) -> Rejected:
    return Rejected(f"the body is nested deeper than {limit} levels of arrays and objects "
                    "(gateway.max_json_depth); flatten it")


def depth(document: Any) -> int:
    """Levels of nested arrays and objects in ``document`` (a scalar: 0), without recursion."""
    deepest = 0
    stack = [(document, 1)]
    while stack:
        value, level = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def checked(drafts: Any, where: str) -> list[EventDraft]:
    """What a user's extractor returned, checked before anything is stored.

    :raises TypeError: naming ``where`` and the first bad item.
    """
    if isinstance(drafts, EventDraft) or not isinstance(drafts, list | tuple):
        raise TypeError(f"{where}: the extractor must return a list of EventDraft, not {drafts!r}")
    for i, draft in enumerate(drafts):
        problem = _problem(draft)
        if problem:
            raise TypeError(f"{where}: item {i} returned by the extractor {problem}: {draft!r}")
    return list(drafts)


def _problem(draft: Any) -> str | None:
    """What is wrong with one draft (its fields are typed, but user code may not respect that)."""
    if not isinstance(draft, EventDraft):
        return "is not an EventDraft"
    name, context, sent_at = (getattr(draft, f) for f in ("name", "context", "sent_at"))
    if name is not None and (not isinstance(name, str) or not name):
        return "has a name that is not a non-empty string"
    if not isinstance(context, dict):
        return "has a context that is not a dict"
    if sent_at is not None and (not isinstance(sent_at, datetime) or sent_at.tzinfo is None):
        return "has a sent_at that is not a timezone-aware datetime"
    return None


def _draft(item: Any, where: str) -> EventDraft:
    if not isinstance(item, dict):
        raise Rejected(f"{where} must be a JSON object, not {_kind(item)}")
    if not FIELDS.issuperset(item):
        unknown = item.keys() - FIELDS
        raise Rejected(f"{where} has unknown key(s) {sorted(unknown)}; allowed: name, context, data, sent_at")
    name = item.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise Rejected(f"{where}: \"name\" must be a non-empty string")
    context = item.get("context")
    if context is None:
        context = {}
    elif not isinstance(context, dict):
        raise Rejected(f"{where}: \"context\" must be a JSON object, not {_kind(context)}")
    sent_at = item.get("sent_at")
    return EventDraft(
        data=item.get("data"),
        context=context,
        name=name,
        sent_at=None if sent_at is None else _timestamp(sent_at, where),
    )


def _timestamp(value: Any, where: str) -> datetime:
    """An ISO 8601 time; one without a zone is taken as UTC; it must exist in UTC (year 1 to 9999)."""
    try:
        moment = datetime.fromisoformat(value)
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        raise Rejected(f"{where}: \"sent_at\" = {value!r} is not an ISO 8601 time such as "
                       "'2024-05-01T12:00:00Z' (in UTC, from year 1 to 9999)") from None


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
