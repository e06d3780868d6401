"""Errors meant for people: what is wrong, where, and what to do.

The CLI prints a :class:`CoreError` as its message alone (no traceback) and exits with
status 2; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class CoreError(Exception):
    """An error the user can fix; ``str()`` is the whole message, hint included."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")


class ConfigError(CoreError):
    """Bad configuration: names the file, the key, the value and what is allowed."""

    def __init__(self, source: str, key: str, value: object, allowed: str) -> None:
        self.source, self.key, self.value, self.allowed = source, key, value, allowed
        super().__init__(f"{source}: {key} = {value!r} is not valid", hint=allowed)


class PluginError(CoreError):
    """A plugin is broken, missing or conflicts with another."""


class PipelineError(CoreError):
    """The user's pipeline (sources, flows, destinations) is inconsistent."""


# A traceback names each error by its one import path, ``hookspecs.PluginError``.
for _error in (CoreError, ConfigError, PluginError, PipelineError):
    _error.__module__ = "hookspecs"
