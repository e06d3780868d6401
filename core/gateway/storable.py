"""Refuse, before the commit, what the store could not write as JSON.

The store writes ``data`` and ``context`` with orjson, which refuses more than 254 levels of
nesting, keys that are not strings, integers beyond 64 bits and types it does not know. Such
a value must be the sender's (or an extractor's, a marshal's) ``400``, never a failed commit
reported as the store being unavailable; and it must be refused before it shares a commit
with other requests' events.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    """Check every event's ``data`` and ``context``."""
    for i, event in enumerate(events):
        storable(f"event {i}" if len(events) > 1 else "the event", event.data, event.context)
