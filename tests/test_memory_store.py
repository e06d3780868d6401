"""The kit's in-memory store: it passes the whole store suite, ``memory://`` selects it in
tests, it imports no SQLAlchemy, and what it adds to the protocol (URLs naming databases,
copies in and out, no options) holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.plugins import PluginHost
from core.runtime import Runtime
from core.testing import MemoryStore, StoreSuite, make_event, registration
from hookspecs import Queue, Status, StoreUnavailable, WhereJob
from tests import gateway_kit


class TestMemoryStore(StoreSuite):
    """The full suite, through the kit's registration of ``memory://``."""

    @pytest.fixture
    def adapter_url(self) -> str:
        return "memory://"


def test_memory_url_resolves_to_the_memory_store_declaring_purge(project: Path) -> None:
    from core.config import load_settings

    host = PluginHost(load_settings(environ={"CORE_STORE": "memory://"}))
    store = host.create("store")
    assert isinstance(store, MemoryStore)
    assert registration("store", "memory://").capabilities == frozenset(
        {"purge", "pause", "flows", "rate_limits", "ordering", "concurrency"})
    assert host.records["testing"].provides == ["store:memory"]


async def test_a_runtime_on_memory_url_opens_a_memory_store(tmp_path: Path) -> None:
    async with gateway_kit.opened(tmp_path, *gateway_kit.shop(), store="memory://") as runtime:
        assert isinstance(runtime, Runtime) and isinstance(runtime.store, MemoryStore)


def test_outside_pytest_no_plugin_host_offers_a_memory_store(project: Path) -> None:
    code = (
        "from core.config import load_settings\n"
        "from core.plugins import PluginHost\n"
        "host = PluginHost(load_settings(environ={}))\n"
        "print('memory' in host.registry.schemes('store'), 'testing' in host.records)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("module", ["core.testing._memory_store", "core.testing"])
def test_the_memory_store_imports_no_sqlalchemy(module: str) -> None:
    code = (
        "import asyncio, sys\n"
        f"from {module} import MemoryStore\n"
        "from core.testing.data import make_event\n"
        "from hookspecs import Claim, Queue, WhereJob\n"
        "async def use():\n"
        "    store = MemoryStore('memory://')\n"
        "    await store.open()\n"
        "    event = make_event()\n"
        "    await store.insert_queue(Queue(events=[event]))\n"
        "    [job] = await store.claim(Claim('me'), destination='crm', action='identify', limit=5,\n"
        "                              now=event.received_at)\n"
        "    assert (await store.find_jobs(WhereJob()))[0].id == job.id\n"
        "    await store.close()\n"
        "asyncio.run(use())\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('sqlalchemy', 'sqlite3', 'aiosqlite')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


async def test_a_closed_or_unopened_store_is_unavailable() -> None:
    store = MemoryStore("memory://")
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.find_jobs(WhereJob())
    await store.open()
    await store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.insert_queue(Queue(events=[make_event()]))


async def test_stores_of_one_url_share_a_database_and_names_keep_them_apart() -> None:
    one, same, other = MemoryStore("memory://a"), MemoryStore("memory://a"), MemoryStore("memory://b")
    for store in (one, same, other):
        await store.open()
    event = make_event()
    await one.insert_queue(Queue(events=[event]))
    assert await same.get_event(event.id) is not None
    assert await other.get_event(event.id) is None


async def test_what_goes_in_or_comes_out_is_a_copy() -> None:
    store = MemoryStore()
    await store.open()
    event = make_event(data={"items": [1]})
    await store.insert_queue(Queue(events=[event]))
    event.data["items"].append(2)
    got = await store.get_job(event.jobs[0].id)
    assert got is not None and got.data == {"items": [1]}
    got.data["items"].append(3)
    got.transitions[0].state_after = Status.SUCCEEDED
    again = await store.get_job(event.jobs[0].id)
    assert again is not None and again.data == {"items": [1]}
    assert again.transitions[0].state_after is Status.ACKNOWLEDGED


async def test_a_value_that_is_not_json_is_refused_and_nothing_is_stored() -> None:
    store = MemoryStore()
    await store.open()
    event = make_event(data={"when": object()})
    with pytest.raises(TypeError):
        await store.insert_queue(Queue(events=[event]))
    assert await store.get_event(event.id) is None


def test_bad_urls_and_options_are_refused_with_what_to_write(project: Path) -> None:
    from core.config import load_settings
    from core.errors import PluginError

    with pytest.raises(ValueError, match="memory://<name>"):
        MemoryStore("memory://x?size=1")
    host = PluginHost(load_settings(environ={}))
    with pytest.raises(PluginError, match=r"store adapter .memory. \(plugin .testing.\) has no option .size."):
        host.registry.create("store", "memory://", {"size": 1})
    shared = host.registry.create("store", "memory://", {"max_pending": 5})  # the memory pub/sub's
    assert isinstance(shared, MemoryStore)
