"""Call a registration hook implementation by implementation, so each result is attributed
to the plugin that returned it and one broken plugin does not hide the others."""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy

import core
import hookspecs

#: Folders whose frames are the host's, not the user's: left out of "where it broke".
_HOST_DIRS = tuple(
    str(Path(module.__file__).resolve().parent) for module in (pluggy, hookspecs, core, importlib) if module.__file__
)
#: The quickstart that ``core init`` copies is the user's code, though it ships inside core.
_USER_DIRS = (str(Path(core.__file__).resolve().parent / "scaffold"),)


def _hosts(filename: str) -> bool:
    path = str(Path(filename).resolve())
    return filename.startswith("<frozen") or (path.startswith(_HOST_DIRS) and not path.startswith(_USER_DIRS))


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
    """One line naming an exception, for records and messages (a :class:`~hookspecs.CoreError`
    is written for people: its message and hint, without the class name)."""
    if isinstance(exc, hookspecs.CoreError):
        return str(exc)
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def user_frames(exc: BaseException, most: int = 3) -> str:
    """Where ``exc`` was raised in the user's (or a plugin's) code: its last ``most`` frames
    outside core, hookspecs, pluggy and importlib, then the exception line. A ``SyntaxError``
    names its file and line itself, so it is shown alone."""
    shown = ""
    if not isinstance(exc, SyntaxError):
        frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if not _hosts(frame.filename)]
        shown = "".join(traceback.format_list(frames[-most:]))
    return shown + "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
