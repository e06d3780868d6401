"""CDC triggers: run the trigger's long-running ``listen(toolkit, emit)``.

``emit`` stores drafts through the same ingest path as HTTP and returns their event ids once
committed, so the listener advances its position only after that (nothing missed across a
restart); a store failure raises out of ``emit`` into the listener. A listener that raises is
restarted after a growing delay (capped); clean shutdown is a cancellation.

Fencing: ``emit`` first checks that this node still holds the trigger's lease. A listener that
froze past the lease (the new holder reads from the last committed position) gets
:class:`LeaseLost` instead of storing changes it no longer owns, so it advances nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from core.gateway.drafts import checked
from core.gateway.ingest import Ingestor
from core.gateway.singleton import still_held
from hookspecs import CdcTrigger, CoreError, Emit, EventDraft, Toolkit

log = logging.getLogger("core.gateway")

MAX_RESTART_DELAY = 30.0


class LeaseLost(CoreError):
    """Raised by ``emit`` when this node no longer holds its CDC trigger's lease."""


def make_emit(ingestor: Ingestor, source: str, trigger: str) -> Emit:
    """The ``emit`` handed to a listener: store drafts, return their ids after the commit."""

    where = f"source {source!r}, cdc trigger {trigger!r}"

    async def emit(drafts: Sequence[EventDraft]) -> list[str]:
        if not await still_held():
            log.warning("%s: this node lost the trigger's lease; %d change(s) not stored (the new holder "
                        "reads them again from the last committed position)", where, len(drafts))
            raise LeaseLost(f"{where}: this node no longer holds the trigger's lease",
                            hint="do not advance the position; the node holding the lease now continues")
        done = await ingestor.ingest(source, trigger, checked(drafts, where))
        return done.event_ids

    return emit


async def run_cdc(ingestor: Ingestor, source: str, trigger: CdcTrigger, toolkit: Toolkit) -> None:
    """Run the listener until cancelled; restart it when it fails."""
    emit = make_emit(ingestor, source, trigger.name)
    where = f"source {source!r}, cdc trigger {trigger.name!r}"
    failures = 0
    while True:
        try:
            await trigger.listen(toolkit, emit)
        except Exception:
            failures += 1
            delay = min(MAX_RESTART_DELAY, 2.0 ** (failures - 1))
            log.exception("%s: the listener failed; restarting it in %.0fs", where, delay)
            await asyncio.sleep(delay)
            continue
        log.info("%s: the listener returned; it is not restarted", where)
        return
