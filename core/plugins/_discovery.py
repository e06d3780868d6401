"""Entry-point discovery: stevedore finds and imports plugins, isolating failures.

Names come from stevedore's entry-point cache and stevedore imports the enabled ones; the
distribution name and version of each entry point come from package metadata (a few
milliseconds), so every error message can name the distribution. A plugin whose import
raises is recorded with its error and the rest still load.
"""

from __future__ import annotations

import importlib.metadata
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from stevedore import named

from core.plugins._records import PluginRecord

GROUP = "core.plugins"


@dataclass(slots=True)
class Discovered:
    """The outcome of one discovery: loaded modules and a record for every entry point."""

    modules: dict[str, ModuleType]
    records: dict[str, PluginRecord]


def _distributions() -> dict[tuple[str, str], tuple[str, str]]:
    """Map (entry name, target) to (distribution, version) from installed metadata."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = ep.dist
        found[(ep.name, ep.value)] = (dist.name, dist.version) if dist else ("?", "?")
    return found


def _error_line(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def discover(*, allow: Iterable[str] | None, deny: Iterable[str]) -> Discovered:
    """Load the ``core.plugins`` entry points that ``allow`` (``None``: all) and ``deny`` permit."""
    deny = set(deny)
    allowed = None if allow is None else set(allow)
    every: named.NamedExtensionManager[Any] = named.NamedExtensionManager(
        GROUP, names=[], on_missing_entrypoints_callback=None
    )
    entry_points = {ep.name: ep for ep in every.list_entry_points()}
    dists = _distributions()
    records: dict[str, PluginRecord] = {}
    for name, ep in sorted(entry_points.items()):
        dist, version = dists.get((name, ep.value), ("", ""))
        record = PluginRecord(name=name, module=ep.value, distribution=dist, version=version)
        if name in deny or (allowed is not None and name not in allowed):
            record.status = "disabled"
        records[name] = record

    def failed(_manager: Any, ep: importlib.metadata.EntryPoint, exc: BaseException) -> None:
        records[ep.name].fail(f"import failed: {_error_line(exc)}")

    enabled = [name for name, record in records.items() if record.status == "active"]
    modules: dict[str, ModuleType] = {}
    if enabled:
        manager = named.NamedExtensionManager(
            GROUP,
            names=enabled,
            on_load_failure_callback=failed,
            on_missing_entrypoints_callback=None,
        )
        for ext in manager.extensions:
            modules[ext.name] = ext.plugin  # type: ignore[assignment]  # targets are modules
    return Discovered(modules=modules, records=records)
