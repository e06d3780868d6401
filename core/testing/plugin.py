"""The pytest plugin of the kit, registered for every pytest run through the ``pytest11``
entry point ``core``: it reports the core and the plugins installed, so a conformance run
says what it ran against, and it offers the kit's in-memory store (``store = "memory://"``)
to every plugin host of the run (:mod:`core.testing._memory_plugin`). It imports the plugin
host's table of built-ins and nothing heavier (the suites are imported by test modules).
"""

from __future__ import annotations

import importlib.metadata

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Add the kit's core plugin to the host's built-ins for this run (never outside pytest)."""
    from core.plugins import BUILTINS
    from core.testing._memory_plugin import PLUGIN_NAME

    BUILTINS.setdefault(PLUGIN_NAME, "core.testing._memory_plugin")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """One header line: the core's version and the installed ``core.plugins`` distributions."""
    try:
        version = importlib.metadata.version("core")
    except importlib.metadata.PackageNotFoundError:
        return []
    plugins = sorted(
        {f"{ep.dist.name} {ep.dist.version}" for ep in importlib.metadata.entry_points(group="core.plugins") if ep.dist}
    )
    return [f"core {version}; plugins: {', '.join(plugins) or 'none'}"]
