"""Run a piece of work on one node at a time, under a supervisor lease.

Cron and CDC triggers must not run twice across gateways: each runs only while its node
holds the lease ``trigger:<source>/<trigger>``, renewed every third of its TTL. Losing the
lease (the supervisor gave it to another node after it lapsed) cancels the work; the node
then waits to win it back. Without a supervisor the work simply runs (one node).

The work runs with :func:`still_held` bound to its lease: a write made under the lease calls
it first, so a holder that froze past its TTL (and lost the key) stores nothing on waking.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from core.observability import metrics
from hookspecs import Lease, Supervisor

log = logging.getLogger("core.gateway")

_HELD: contextvars.ContextVar[tuple[Supervisor, Lease] | None] = contextvars.ContextVar("held", default=None)


def trigger_key(source: str, trigger: str) -> str:
    """The supervisor key that makes a cron or CDC trigger a singleton."""
    return f"trigger:{source}/{trigger}"


async def still_held() -> bool:
    """Fencing check of the work's lease (its token is still the live one); ``True`` without a supervisor."""
    held = _HELD.get()
    if held is None:
        return True
    supervisor, lease = held
    return await supervisor.is_current(lease)


async def _release(supervisor: Supervisor, lease: Lease) -> None:
    try:
        await supervisor.release(lease)
    except Exception as exc:  # noqa: BLE001 - the lease lapses by itself
        log.warning("could not release lease %r (it expires by itself): %s", lease.key, exc)


async def _hold(supervisor: Supervisor, lease: Lease, ttl: float, task: asyncio.Task[None]) -> None:
    """Renew ``lease`` until ``task`` ends; cancel ``task`` if the lease is lost."""
    while not task.done():
        await asyncio.wait({task}, timeout=ttl / 3)
        if task.done():
            return
        try:
            renewed = await supervisor.renew(lease, ttl=ttl)
        except Exception as exc:  # noqa: BLE001 - keep running while the lease is still valid
            log.warning("could not renew lease %r: %s", lease.key, exc)
            renewed = lease if lease.expires_at > datetime.now(UTC) else None
        if renewed is None:
            log.warning("lost lease %r: another node runs it now; stopping here", lease.key)
            task.cancel()
            return
        lease = renewed


async def run_singleton(
    supervisor: Supervisor | None, key: str, *, owner: str, ttl: float, work: Callable[[], Awaitable[None]]
) -> None:
    """Run ``work()`` while this node holds ``key``; return when it returns (or raise what it raises)."""
    if supervisor is None:
        await work()
        return
    kind, _, name = key.partition(":")
    held = metrics.child(metrics.LEASES_HELD, kind, name)
    held.set(0)
    waiting_logged = False
    while True:
        try:
            lease = await supervisor.acquire(key, owner=owner, ttl=ttl)
        except Exception as exc:  # noqa: BLE001 - retry: the supervisor may come back
            log.warning("could not acquire lease %r, retrying: %s", key, exc)
            lease = None
        if lease is None:
            if not waiting_logged:
                log.info("%r runs on another node; this one takes over if it stops", key)
                waiting_logged = True
            await asyncio.sleep(ttl / 3)
            continue
        log.info("this node runs %r (lease token %d)", key, lease.token)
        context = contextvars.copy_context()
        context.run(_HELD.set, (supervisor, lease))
        task = context.run(asyncio.ensure_future, work())  # the task copies this context
        held.set(1)
        try:
            await _hold(supervisor, lease, ttl, task)
            await asyncio.wait({task})
        finally:
            held.set(0)
            if not task.done():  # this runner is being cancelled: stop the work first
                task.cancel()
                await asyncio.wait({task})
            await _release(supervisor, lease)
        if not task.cancelled():
            task.result()
            return
        waiting_logged = False
