"""The ``http`` plugin module: it implements no hook.

A webhook destination is declared by the application (``core_plugin_http.WebhookDestination``)
and returned from its own ``core_register_destinations``. This module is the entry point that
lists the distribution in ``core plugins list``; it imports no HTTP client.
"""

from __future__ import annotations

#: The core contract versions this plugin supports (docs/compatibility.md).
CORE_CONTRACT = ">=1.0,<2"
