"""Cron triggers: call the trigger's ``extract`` on its schedule and ingest what it returns.

The schedule is ``@every <duration>`` or a CRON string (:mod:`core.timing`). A tick that is
missed because the previous one ran long is skipped, not run late in a burst. An ``extract``
that raises is logged and the next tick comes as usual; so is a store failure (the drafts of
that tick are lost: an extractor that keeps a cursor should advance it only on success).
Before storing, a tick checks that its node still holds the trigger's lease (fencing): a node
that froze past the lease and woke up drops that tick's events.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from core.gateway.drafts import checked
from core.gateway.ingest import Ingestor
from core.gateway.singleton import still_held
from core.timing import parse_interval
from hookspecs import CronTrigger, Toolkit

log = logging.getLogger("core.gateway")


async def tick(ingestor: Ingestor, source: str, trigger: CronTrigger, toolkit: Toolkit) -> None:
    """One run: extract, then ingest; failures are logged, never raised."""
    where = f"source {source!r}, cron trigger {trigger.name!r}"
    try:
        drafts = checked(await trigger.extract(toolkit), where)
    except Exception:
        log.exception("%s: extract failed; trying again at the next tick", where)
        return
    if not drafts:
        return
    try:
        if not await still_held():
            log.warning("%s: this node lost the trigger's lease during the tick; its %d event(s) are dropped "
                        "(the new holder runs the trigger)", where, len(drafts))
            return
        done = await ingestor.ingest(source, trigger.name, drafts)
    except Exception as exc:  # noqa: BLE001 - the next tick comes anyway
        log.error("%s: could not store %d event(s): %s", where, len(drafts), exc)
        return
    log.debug("%s: stored %d event(s)", where, len(done.events))


async def run_cron(ingestor: Ingestor, source: str, trigger: CronTrigger, toolkit: Toolkit) -> None:
    """Tick forever (until cancelled) on the trigger's schedule."""
    interval = parse_interval(trigger.interval)
    due = interval.next_after(datetime.now(UTC))
    while True:
        await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
        await tick(ingestor, source, trigger, toolkit)
        now = datetime.now(UTC)
        due = interval.next_after(due)
        if due <= now:
            due = interval.next_after(now)
