"""The kit's own core plugin: it offers :class:`~core.testing.MemoryStore` as ``store = "memory://"``.

The kit's pytest plugin (:mod:`core.testing.plugin`) adds this module to the plugin host's
built-ins for the pytest run, so every :class:`~core.plugins.PluginHost` of a test offers the
scheme, with or without the installed plugins. Outside pytest (``core start``) nothing offers
it: the in-memory store keeps nothing beyond its event loop, so it is no production store.
"""

from __future__ import annotations

from typing import Any

from hookspecs import AdapterRegistration, Store, hookimpl

#: The plugin's name in the host (``core plugins list`` of a test shows it as a built-in).
PLUGIN_NAME = "testing"


def _store(url: str, options: dict[str, Any]) -> Store:
    from core.testing._memory_store import MemoryStore

    return MemoryStore(url)


@hookimpl
def core_register_stores() -> list[AdapterRegistration[Store]]:
    return [AdapterRegistration(
        name="memory", schemes=("memory",), factory=_store,
        capabilities=frozenset({"purge", "pause", "flows", "rate_limits", "ordering", "concurrency"}),
        options={},  # none of its own: [options.memory] is the memory pub/sub's
        description="in-memory store of the test kit (one event loop; nothing durable)",
    )]
