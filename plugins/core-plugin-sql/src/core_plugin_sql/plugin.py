"""The ``sql`` plugin module: it implements no hook.

A SQL destination is declared by the application, in Python
(``core_plugin_sql.SQLDestination``) or in TOML (``core_plugin_sql.destinations_from_toml``),
and returned from the app's own ``core_register_destinations``. This module is the entry point
that lists the distribution in ``core plugins list``; it imports neither SQLAlchemy nor a driver.
"""

from __future__ import annotations

#: The core contract versions this plugin supports (docs/compatibility.md).
CORE_CONTRACT = ">=1.0,<2"
