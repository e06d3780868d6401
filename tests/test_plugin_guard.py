"""The test guard: the core's tests do not see installed third-party plugins unless a test
opts in (``installed_plugins``). Meaningful in the ``tests`` nox session, where every
plugin of the repository is installed."""

from __future__ import annotations

import importlib.metadata

from core.config import load_settings
from core.plugins import GROUP, PluginHost


def third_party_statuses() -> dict[str, str]:
    host = PluginHost(load_settings())
    return {name: record.status for name, record in host.records.items() if not record.builtin}


def test_installed_plugins_are_kept_out_of_the_core_tests() -> None:
    assert all(status == "disabled" for status in third_party_statuses().values())


def test_a_test_can_opt_in_to_the_installed_plugins(installed_plugins: None) -> None:
    installed = {ep.name for ep in importlib.metadata.entry_points(group=GROUP)}
    statuses = third_party_statuses()
    assert set(statuses) >= installed
    assert "disabled" not in statuses.values()
