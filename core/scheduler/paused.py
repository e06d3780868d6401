"""Whether an action is paused (``core actions pause``, ``POST /admin/api/.../pause``): the
scheduler asks before every claim, scheduled or realtime, and claims nothing while it is.

A store that keeps no pauses (not a :class:`~hookspecs.PausingStore`) pauses nothing.
"""

from __future__ import annotations

from hookspecs import PausingStore, Store


async def is_paused(store: Store, destination: str, action: str) -> bool:
    """``True`` if ``destination.action`` or the whole ``destination`` is paused in ``store``."""
    if not isinstance(store, PausingStore):
        return False
    return any(p.destination == destination and p.action in (action, "*") for p in await store.pauses())
