"""The ``nats`` plugin module: hookimpls only.

The adapter, and with it nats-py, is imported only when configuration selects a
``nats://`` URL, so ``core plugins list`` never imports the SDK.
"""

from __future__ import annotations

from core.brokers import broker_registration
from hookspecs import AdapterRegistration, PubSub, hookimpl

#: The core contract versions this plugin supports (docs/compatibility.md).
CORE_CONTRACT = ">=1.0,<2"

SCHEMES = ("nats", "nats+tls")


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[PubSub]]:
    from core_plugin_nats._options import OPTIONS

    return [broker_registration(
        "nats", SCHEMES, "core_plugin_nats.pubsub:NatsPubSub",
        "NATS JetStream: a durable pull consumer per group, dead letters after max_deliveries",
        OPTIONS,
    )]
