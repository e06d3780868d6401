"""The scheduler: runs jobs against destinations, realtime from the broker or on each action's
schedule, and records every transition. See ``docs/scheduler.md``."""

from __future__ import annotations

from core.scheduler.service import recover, run_scheduler

__all__ = ["recover", "run_scheduler"]
