"""The ``google`` plugin module: hookimpls only.

The adapter, and with it google-cloud-pubsub (and gRPC), is imported only when configuration
selects a ``google://`` URL, so ``core plugins list`` never imports the SDK.
"""

from __future__ import annotations

from core.brokers import broker_registration
from hookspecs import AdapterRegistration, PubSub, hookimpl

#: The core contract versions this plugin supports (docs/compatibility.md).
CORE_CONTRACT = ">=1.0,<2"

SCHEMES = ("google",)


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[PubSub]]:
    from core_plugin_google._options import OPTIONS

    return [broker_registration(
        "google", SCHEMES, "core_plugin_google.pubsub:GooglePubSub",
        "Google Cloud Pub/Sub: a topic per prefix and topic, a subscription per group, "
        "dead letters after max_deliveries",
        OPTIONS,
    )]
