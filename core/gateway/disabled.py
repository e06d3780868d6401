"""The flows disabled in the store (``core flows disable``, ``POST /admin/api/flows/{f}/disable``),
as the gateway's ingest path sees them: a cached set, read again at most every
``gateway.flow_refresh_seconds``, so no event costs a store query of its own.

One read is in flight at a time (concurrent ingests wait for it). A read that fails keeps the
set read last (logged) and is tried again once the interval passed; before any read succeeded it
raises :class:`~hookspecs.StoreUnavailable`, so no job of a disabled flow is made blindly. A
store without disabled flows (no ``disabled_flows`` method) disables nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time

from core.plugins._collect import describe
from hookspecs import FlowSwitchStore, Store, StoreUnavailable

log = logging.getLogger("core.gateway")


class DisabledFlows:
    """The names of the disabled flows of ``store``, at most ``refresh_seconds`` old."""

    def __init__(self, store: Store, refresh_seconds: float) -> None:
        self._reader = store.disabled_flows if isinstance(store, FlowSwitchStore) else None
        self.refresh_seconds = refresh_seconds
        self._names: frozenset[str] | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def names(self) -> frozenset[str]:
        """The disabled flows' names; read from the store when the cached set is too old."""
        if self._reader is None:
            return frozenset()
        if self._names is not None and time.monotonic() - self._read_at < self.refresh_seconds:
            return self._names
        async with self._lock:
            if self._names is None or time.monotonic() - self._read_at >= self.refresh_seconds:
                await self._read()
        assert self._names is not None
        return self._names

    async def _read(self) -> None:
        assert self._reader is not None
        try:
            self._names = frozenset(d.flow for d in await self._reader())
        except Exception as exc:
            if self._names is None:
                raise StoreUnavailable(f"the store failed to list the disabled flows: {describe(exc)}") from exc
            log.warning("could not read the disabled flows (kept the last ones read): %s", describe(exc))
        self._read_at = time.monotonic()
