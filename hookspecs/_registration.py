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

from hookspecs._capabilities import Capability
from hookspecs._options import Option

AdapterT = TypeVar("AdapterT")


@dataclass(frozen=True, slots=True)
class AdapterRegistration(Generic[AdapterT]):
    """One adapter offered by a plugin.

    :param name: short unique name, e.g. ``"postgresql"``; its option table is
        ``[options.<name>]``.
    :param schemes: URL schemes it serves, e.g. ``("postgresql", "postgres")``.
    :param factory: ``factory(url, options)`` builds the adapter for a configured URL; it
        receives the URL string as written and its options: with an ``options`` schema, every
        option of it, converted and with defaults filled in; without one, the raw table.
    :param capabilities: the :class:`~hookspecs.Capability` members the adapter declares (the
        conformance kit runs the checks of each one it declares, and only skips those it does
        not declare); plain strings naming a member are accepted.
    :param description: one line for ``core plugins list``.
    :param options: the adapter's option schema, by option name. The host reads the
        ``[options.<name>]`` table and the URL query (the URL wins), refuses an unknown key
        or a bad value in one error naming the adapter, the option and what is allowed, and
        hands the factory the converted values. ``None`` (no schema declared): the host hands
        the factory the raw table and checks nothing.
    :param driver_query: the URL query belongs to the adapter's driver
        (``postgresql://...?sslmode=require``), not to its options: the host leaves it in the
        URL, unread, and takes options from the table alone.
    """

    name: str
    schemes: tuple[str, ...]
    factory: Callable[[str, dict[str, Any]], AdapterT]
    capabilities: frozenset[str] = field(default_factory=frozenset)
    description: str = ""
    options: Mapping[str, Option] | None = None
    driver_query: bool = False

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"adapter name {self.name!r} must be a non-empty identifier")
        if not self.schemes:
            raise ValueError(f"adapter {self.name!r} must serve at least one URL scheme")
        known = [c.value for c in Capability]
        unknown = sorted(str(c) for c in self.capabilities if c not in known)
        if unknown:
            raise ValueError(
                f"adapter {self.name!r} declares unknown capabilities {unknown}; known: {', '.join(known)}"
            )
        object.__setattr__(self, "capabilities", frozenset(Capability(c) for c in self.capabilities))
