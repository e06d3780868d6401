"""The ``azure`` plugin module: hookimpls only.

The adapter, and with it azure-servicebus, is imported only when configuration selects an
``azure://`` URL, so ``core plugins list`` never imports the SDK.
"""

from __future__ import annotations

from core.brokers import broker_registration
from hookspecs import AdapterRegistration, PubSub, hookimpl

#: The core contract versions this plugin supports (docs/compatibility.md).
CORE_CONTRACT = ">=1.0,<2"

SCHEMES = ("azure",)


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[PubSub]]:
    from core_plugin_azure._options import OPTIONS

    return [broker_registration(
        "azure", SCHEMES, "core_plugin_azure.pubsub:AzurePubSub",
        "Azure Service Bus: a topic per prefix and topic, a subscription per group, peek-lock, "
        "dead letters after max_deliveries",
        OPTIONS,
    )]
