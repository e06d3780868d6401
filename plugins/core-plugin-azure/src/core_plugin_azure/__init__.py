"""Azure Service Bus for ``core``.

Selected by URL in configuration (``pubsub = "azure://NAMESPACE.servicebus.windows.net"``);
the entry point is the light :mod:`core_plugin_azure.plugin`. Importing this package does not
import azure-servicebus.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
