"""The ``nats`` plugin module: hookimpls only.

The factory imports the adapter, and with it nats-py, only when configuration selects a
``nats://`` URL, so ``core plugins list`` never imports the SDK.
"""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, PubSub, hookimpl

SCHEMES = ("nats", "nats+tls")


def _pubsub(url: str, options: dict[str, Any]) -> PubSub:
    from core_plugin_nats.pubsub import NatsPubSub

    return NatsPubSub(url, options)


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[PubSub]]:
    return [AdapterRegistration(
        name="nats", schemes=SCHEMES, factory=_pubsub,
        capabilities=frozenset({"reconnect"}),
        description="NATS JetStream: a durable pull consumer per group, dead letters after max_deliveries",
    )]
