"""Whether an action is paused (``core actions pause``, ``POST /admin/api/.../pause``): the
scheduler asks before every claim, scheduled or realtime, and claims nothing while it is.

A store without pauses (no ``pauses`` method) pauses nothing.
"""

from __future__ import annotations

from typing import Any


async def is_paused(store: Any, destination: str, action: str) -> bool:
    """``True`` if ``destination.action`` or the whole ``destination`` is paused in ``store``."""
    reader = getattr(store, "pauses", None)
    if reader is None:
        return False
    return any(p.destination == destination and p.action in (action, "*") for p in await reader())
