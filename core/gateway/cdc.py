"""CDC triggers: run the trigger's long-running ``listen(toolkit, emit)``.

``emit`` stores drafts through the same ingest path as HTTP and returns their event ids once
committed, so the listener advances its position only after that (nothing missed across a
restart); a store failure raises out of ``emit`` into the listener. A listener that raises is
restarted after a growing delay (capped); clean shutdown is a cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from core.gateway.drafts import checked
from core.gateway.ingest import Ingestor
from hookspecs import CdcTrigger, Emit, EventDraft, Toolkit

log = logging.getLogger("core.gateway")

MAX_RESTART_DELAY = 30.0


def make_emit(ingestor: Ingestor, source: str, trigger: str) -> Emit:
    """The ``emit`` handed to a listener: store drafts, return their ids after the commit."""

    where = f"source {source!r}, cdc trigger {trigger!r}"

    async def emit(drafts: Sequence[EventDraft]) -> list[str]:
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
