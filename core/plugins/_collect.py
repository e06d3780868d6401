"""Call a registration hook implementation by implementation, so each result is attributed
to the plugin that returned it and one broken plugin does not hide the others."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import pluggy


def collect(
    pm: pluggy.PluginManager, hook_name: str, on_error: Callable[[str, BaseException], None]
) -> list[tuple[str, Any]]:
    """Return ``(plugin name, item)`` pairs from every implementation of ``hook_name``.

    Each implementation returns an item or a list of items; ``None`` offers nothing. An
    implementation that raises is reported through ``on_error`` and skipped.
    """
    caller = getattr(pm.hook, hook_name)
    pairs: list[tuple[str, Any]] = []
    for impl in reversed(caller.get_hookimpls()):  # registration order
        try:
            result = impl.function(**{arg: None for arg in impl.argnames})
        except Exception as exc:  # noqa: BLE001 - isolate a broken plugin
            on_error(impl.plugin_name, exc)
            continue
        if result is None:
            continue
        items = result if isinstance(result, list | tuple) else [result]
        pairs.extend((impl.plugin_name, item) for item in items)
    return pairs


def describe(exc: BaseException) -> str:
    """One line naming an exception, for records and messages."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()
