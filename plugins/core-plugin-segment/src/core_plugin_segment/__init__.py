"""A Segment-compatible source for core: point an analytics SDK's host at the gateway.

See ``docs/segment.md``.
"""

from __future__ import annotations

from core_plugin_segment._messages import CALLS, MAX_BATCH_BYTES, MAX_CALL_BYTES
from core_plugin_segment._source import SegmentSource, answer

__all__ = ["CALLS", "MAX_BATCH_BYTES", "MAX_CALL_BYTES", "SegmentSource", "answer"]
