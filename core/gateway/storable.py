"""Refuse, before the commit, what the store could not write as JSON.

The store writes ``data`` and ``context`` with orjson, which refuses more than 254 levels of
nesting, keys that are not strings, integers beyond 64 bits and types it does not know. Such
a value must be the sender's (or an extractor's, a marshal's) ``400``, never a failed commit
reported as the store being unavailable; and it must be refused before it shares a commit
with other requests' events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

import orjson

from hookspecs import Event, Rejected


class Unstorable(Rejected):
    """A value that cannot be written as JSON; nothing was stored."""


def storable(what: str, *values: Any) -> None:
    """Check ``values`` encode as JSON; :class:`Unstorable` naming ``what`` if one does not."""
    for value in values:
        try:
            orjson.dumps(value)
        except TypeError as exc:
            raise Unstorable(f"{what} cannot be stored as JSON ({exc}): at most 254 levels of nesting, "
                             "string keys, integers within 64 bits, JSON types only") from None


def check_events(events: Sequence[Event]) -> None:
    """Check every event's ``data`` and ``context``, its name (no NUL: PostgreSQL text refuses
    it) and its ``sent_at`` (it must exist in UTC)."""
    for i, event in enumerate(events):
        what = f"event {i}" if len(events) > 1 else "the event"
        storable(what, event.data, event.context)
        if "\0" in event.name:
            raise Unstorable(f"{what}: its name contains a NUL character, which no store keeps")
        if event.sent_at is not None:
            try:
                event.sent_at.astimezone(UTC)
            except OverflowError:
                raise Unstorable(f"{what}: its sent_at {event.sent_at.isoformat()} is outside years 1 to 9999 "
                                 "in UTC") from None
