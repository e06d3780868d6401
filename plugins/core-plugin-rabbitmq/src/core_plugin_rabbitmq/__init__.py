"""RabbitMQ pub/sub for ``core``.

Selected by URL in configuration (``pubsub = "amqp://guest:guest@127.0.0.1:5672/"``); the
entry point is the light :mod:`core_plugin_rabbitmq.plugin`. Importing this package does not
import aio-pika.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
