"""The ``segment`` plugin module: nothing is registered until an application asks for it.

A Segment source needs its write keys, so it is not added by installing the plugin: the
application's ``core_register_sources`` returns a :class:`~core_plugin_segment.SegmentSource`
(see ``docs/segment.md``). This module lets ``core plugins list`` show the plugin.
"""

from __future__ import annotations

#: The core contract versions this plugin supports (docs/compatibility.md).
CORE_CONTRACT = ">=1.0,<2"
