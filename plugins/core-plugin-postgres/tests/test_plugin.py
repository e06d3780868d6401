"""The plugin module: registrations, lazy imports, and the shared options table."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from hookspecs import ConfigError

from core_plugin_postgres.plugin import options_for


def test_listing_plugins_imports_no_driver(tmp_path: Path) -> None:
    code = (
        "import sys; from core.plugins import PluginHost; from core.config import load_settings;"
        "host = PluginHost(load_settings());"
        "print(sorted(host.records['postgres'].provides));"
        "print([m for m in ('asyncpg', 'sqlalchemy.ext.asyncio', 'core_plugin_postgres.store') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout
    provides, imported = out.splitlines()
    assert provides == str(sorted(["store:postgresql", "supervisor:postgresql", "pubsub:postgresql",
                                   "wanderer:postgresql"]))
    assert imported == "[]"


def test_options_are_shared_by_kind() -> None:
    options = {"pool_size": 8, "copy_threshold": 10, "pubsub": {"ack_timeout": 5}}
    assert options_for("store", options) == {"pool_size": 8, "copy_threshold": 10}
    assert options_for("pubsub", options) == {"pool_size": 8, "ack_timeout": 5}
    assert options_for("wanderer", options) == {}


def test_unknown_option_is_named() -> None:
    with pytest.raises(ConfigError, match="pool_sise"):
        options_for("store", {"pool_sise": 3})
    with pytest.raises(ConfigError, match=r"pubsub\.node_ttl"):
        options_for("pubsub", {"pubsub": {"node_ttl": 3}})


async def test_nodes_starting_together_create_the_tables_once(pg_url: str) -> None:
    from core_plugin_postgres.pubsub import PostgresPubSub
    from core_plugin_postgres.store import PostgresStore
    from core_plugin_postgres.supervisor import PostgresSupervisor
    from core_plugin_postgres.wanderer import PostgresWanderer

    adapters = [cls(pg_url) for cls in (PostgresStore, PostgresPubSub, PostgresSupervisor, PostgresWanderer)
                for _ in range(3)]
    try:
        await asyncio.gather(*(adapter.open() for adapter in adapters))
    finally:
        for adapter in adapters:
            await adapter.close()
