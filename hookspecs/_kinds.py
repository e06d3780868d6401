"""The adapter kinds: one table of what a plugin can provide, selected in configuration by URL.

Each kind has its configuration key (its name), the protocol its adapters implement and the
hook that registers them. The registry, the runtime, the scaffold and the conformance kit
read this table instead of spelling kinds and hook names themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hookspecs._pubsub import PubSub
from hookspecs._store import Store
from hookspecs._supervisor import Supervisor
from hookspecs._wanderer import Wanderer


@dataclass(frozen=True, slots=True)
class AdapterKind:
    """One adapter kind.

    :param name: the kind, also its configuration key (``store = "sqlite:///..."``).
    :param protocol: the protocol its adapters implement.
    :param hook: the hook returning its :class:`~hookspecs.AdapterRegistration` records.
    """

    name: str
    protocol: type
    hook: str


#: Every adapter kind by name, in the order the runtime opens them.
ADAPTER_KINDS: Mapping[str, AdapterKind] = {
    kind.name: kind
    for kind in (
        AdapterKind("store", Store, "core_register_stores"),
        AdapterKind("pubsub", PubSub, "core_register_pubsubs"),
        AdapterKind("supervisor", Supervisor, "core_register_supervisors"),
        AdapterKind("wanderer", Wanderer, "core_register_wanderers"),
    )
}
