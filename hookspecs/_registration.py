"""Registration records: what an adapter hook returns.

Like conda's plugin records, each hook returns small typed records. The host indexes them by
``name`` and by URL ``scheme`` and refuses duplicates, naming both distributions. The
``factory`` is called only when configuration selects the adapter, so a plugin imports its SDK
inside the factory and listing plugins stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from hookspecs._options import Option

AdapterT = TypeVar("AdapterT")

#: The adapter kinds a plugin can provide, selected in configuration by URL.
ADAPTER_KINDS = ("store", "pubsub", "supervisor", "wanderer")


@dataclass(frozen=True, slots=True)
class AdapterRegistration(Generic[AdapterT]):
    """One adapter offered by a plugin.

    :param name: short unique name, e.g. ``"postgresql"``.
    :param schemes: URL schemes it serves, e.g. ``("postgresql", "postgres")``.
    :param factory: ``factory(url, options)`` builds the adapter for a configured URL; it
        receives the URL string as written and the adapter's option table (may be empty).
    :param capabilities: features the adapter declares (the conformance kit runs the checks of
        each one it declares, and only skips those it does not declare).
    :param description: one line for ``core plugins list``.
    :param options: the adapter's option schema, by option name: what ``[options.<name>]``
        (and, for adapters whose URL query carries options, the URL query) may set.
    """

    name: str
    schemes: tuple[str, ...]
    factory: Callable[[str, dict[str, Any]], AdapterT]
    capabilities: frozenset[str] = field(default_factory=frozenset)
    description: str = ""
    options: Mapping[str, Option] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"adapter name {self.name!r} must be a non-empty identifier")
        if not self.schemes:
            raise ValueError(f"adapter {self.name!r} must serve at least one URL scheme")
