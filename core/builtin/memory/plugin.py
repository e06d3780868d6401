"""Built-in plugin ``memory``: in-process pub/sub for a single-process deployment."""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, PubSub, hookimpl


def _pubsub(url: str, options: dict[str, Any]) -> PubSub:
    from core.builtin.memory.pubsub import MemoryPubSub

    return MemoryPubSub(url, **options)


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[PubSub]]:
    return [AdapterRegistration(
        name="memory", schemes=("memory",), factory=_pubsub, capabilities=frozenset({"reconnect"}),
        description="in-process pub/sub (one process: gateway and scheduler together)",
    )]
