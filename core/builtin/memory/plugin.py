"""Built-in plugin ``memory``: in-process pub/sub for a single-process deployment."""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, Capability, Option, PubSub, hookimpl, number

#: The options of ``[options.memory]`` (or ``memory://?max_pending=1000``).
OPTIONS = {
    "max_pending": Option(number(int, 1), 10_000, "a whole number >= 1",
                          help="most messages one consumer group holds (waiting plus unacknowledged)"),
    "publish_timeout": Option(number(float, 0), 5.0, "seconds, >= 0",
                              help="seconds a publisher waits for room before the broker is reported unavailable"),
}


def _pubsub(url: str, options: dict[str, Any]) -> PubSub:
    from core.builtin.memory.pubsub import MemoryPubSub

    return MemoryPubSub(url, **options)


@hookimpl
def core_register_pubsubs() -> list[AdapterRegistration[PubSub]]:
    return [AdapterRegistration(
        name="memory", schemes=("memory",), factory=_pubsub, options=OPTIONS,
        capabilities=frozenset({Capability.RECONNECT}),
        description="in-process pub/sub (one process: gateway and scheduler together)",
    )]
