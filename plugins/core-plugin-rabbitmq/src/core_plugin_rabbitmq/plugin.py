"""The ``rabbitmq`` plugin module: hookimpls only.

The factory imports the adapter, and with it aio-pika, only when configuration selects an
``amqp://`` URL, so ``core plugins list`` never imports the SDK.
"""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, PubSub, hookimpl

SCHEMES = ("amqp", "amqps")


def _pubsub(url: str, options: dict[str, Any]) -> PubSub:
    from core_plugin_rabbitmq.pubsub import RabbitPubSub

    return RabbitPubSub(url, options)


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[PubSub]]:
    return [AdapterRegistration(
        name="rabbitmq", schemes=SCHEMES, factory=_pubsub,
        capabilities=frozenset({"reconnect"}),
        description="RabbitMQ: a topic exchange, a quorum queue per group, dead letters after max_deliveries",
    )]
