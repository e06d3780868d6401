"""The pytest plugin of the kit, registered for every pytest run through the ``pytest11``
entry point ``core``: it reports the core and the plugins installed, so a conformance run
says what it ran against. It imports nothing heavy (the suites are imported by test modules).
"""

from __future__ import annotations

import importlib.metadata

import pytest


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
