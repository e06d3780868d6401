"""NATS JetStream pub/sub for ``core``.

Selected by URL in configuration (``pubsub = "nats://127.0.0.1:4222"``); the entry point is
the light :mod:`core_plugin_nats.plugin`. Importing this package does not import nats-py.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
