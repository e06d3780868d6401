"""core: an event-pipeline framework built as a plugin host."""

from __future__ import annotations

__version__ = "0.1.0"
