"""The plugin module: registrations, lazy imports, and the shared options table."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from core.testing import create_adapter
from hookspecs import PluginError

URL = "postgresql://app@db/pipeline"


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
    store = create_adapter("store", URL, options)
    assert (store.pool_size, store.copy_threshold, store.max_overflow) == (8, 10, 5)
    pubsub = create_adapter("pubsub", URL, options)
    assert (pubsub.pool_size, pubsub.ack_timeout, pubsub.prefetch) == (8, 5.0, 100)
    assert create_adapter("wanderer", URL, options).url == URL


def test_the_url_query_is_libpqs() -> None:
    url = "postgresql://app@db/pipeline?sslmode=require&pool_size=1"
    store = create_adapter("store", url, {"pool_size": 3})
    assert (store.url, store.pool_size) == (url, 3)


def test_unknown_option_is_named() -> None:
    with pytest.raises(PluginError, match=r"store adapter 'postgresql'.*has no option 'pool_sise'"):
        create_adapter("store", URL, {"pool_sise": 3})
    with pytest.raises(PluginError, match=r"pubsub adapter 'postgresql'.*has no option 'node_ttl'"):
        create_adapter("pubsub", URL, {"pubsub": {"node_ttl": 3}})
    with pytest.raises(PluginError, match=r"(?s)wanderer adapter.*hint: no options: this adapter takes none"):
        create_adapter("wanderer", URL, {"wanderer": {"pool_size": 3}})


def test_a_bad_value_says_what_is_allowed() -> None:
    with pytest.raises(PluginError, match=r"option retention = -1 is not valid.*\n  hint: retention: seconds, > 0"):
        create_adapter("store", URL, {"retention": -1})


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
