"""The ``rabbitmq`` plugin module: hookimpls only.

The adapter, and with it aio-pika, is imported only when configuration selects an
``amqp://`` URL, so ``core plugins list`` never imports the SDK.
"""

from __future__ import annotations

from core.brokers import broker_registration
from hookspecs import AdapterRegistration, PubSub, hookimpl

#: The core contract versions this plugin supports (docs/compatibility.md).
CORE_CONTRACT = ">=1.0,<2"

SCHEMES = ("amqp", "amqps")


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[PubSub]]:
    from core_plugin_rabbitmq._options import OPTIONS

    return [broker_registration(
        "rabbitmq", SCHEMES, "core_plugin_rabbitmq.pubsub:RabbitPubSub",
        "RabbitMQ: a topic exchange, a quorum queue per group, dead letters after max_deliveries",
        OPTIONS,
    )]
