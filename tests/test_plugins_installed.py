"""The plugin host against real installed distributions (tests/plugins/*), through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.testing import free_port
from tests.scratch import TEST_PLUGINS, ScratchEnv

pytestmark = pytest.mark.slow


def listing(env: ScratchEnv, *args: str, **kw: str) -> list[dict[str, object]]:
    result = env.core("plugins", "list", "--json", *args, env=kw or None)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def by_name(rows: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(r["name"]): r for r in rows}


@pytest.fixture()
def example(scratch_env: ScratchEnv) -> Iterator[ScratchEnv]:
    scratch_env.install(TEST_PLUGINS / "core-plugin-example")
    yield scratch_env
    scratch_env.uninstall("core-plugin-example")


def test_installed_plugin_is_listed_with_version_and_what_it_provides(example: ScratchEnv) -> None:
    row = by_name(listing(example))["example"]
    assert row["version"] == "1.2.3"
    assert row["distribution"] == "core-plugin-example"
    assert row["status"] == "active"
    assert row["module"] == "core_plugin_example.plugin"
    assert row["error"] is None
    assert row["provides"] == ["store:example", "pubsub:example"]
    assert row["hooks"] == ["core_register_pubsubs", "core_register_stores", "core_startup"]

    table = example.core("plugins", "list")
    assert table.returncode == 0
    header, *lines = table.stdout.splitlines()
    assert header.split() == ["NAME", "VERSION", "DISTRIBUTION", "STATUS", "PROVIDES", "HOOKS"]
    line = next(line for line in lines if line.startswith("example "))
    assert "1.2.3" in line and "core-plugin-example" in line
    assert " store/pubsub:example (example) " in line


def test_uninstalled_plugin_is_gone(scratch_env: ScratchEnv) -> None:
    scratch_env.install(TEST_PLUGINS / "core-plugin-example")
    assert "example" in by_name(listing(scratch_env))
    scratch_env.uninstall("core-plugin-example")
    assert "example" not in by_name(listing(scratch_env))


def test_listing_never_imports_the_adapter_sdk(example: ScratchEnv) -> None:
    code = (
        "import sys\n"
        "from core.config import load_settings\n"
        "from core.plugins import PluginHost\n"
        "host = PluginHost(load_settings())\n"
        "assert host.records['example'].status == 'active', host.records['example']\n"
        "print('core_plugin_example.sdk' in sys.modules)\n"
    )
    result = example.python_code(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_builtins_are_listed_with_all_and_serve_the_embedded_default(scratch_env: ScratchEnv) -> None:
    assert not {"sqlite", "memory", "local"} & set(by_name(listing(scratch_env)))
    rows = by_name(listing(scratch_env, "--all"))
    assert rows["sqlite"]["provides"] == ["store:sqlite", "supervisor:sqlite", "wanderer:sqlite"]
    assert rows["memory"]["provides"] == ["pubsub:memory"]
    assert rows["local"]["provides"] == ["supervisor:local"]
    assert all(rows[n]["distribution"] == "core" and rows[n]["builtin"] for n in ("sqlite", "memory", "local"))
    code = (
        "from core.config import load_settings\n"
        "from core.plugins import PluginHost\n"
        "s = load_settings()\n"
        "h = PluginHost(s)\n"
        "urls = {k: s[k] for k in ('store', 'pubsub', 'wanderer')} | {'supervisor': h.store_supervisor_url()}\n"
        "print(*(h.registry.resolve(k, urls[k]).plugin for k in ('store', 'pubsub', 'supervisor', 'wanderer')))\n"
    )
    result = scratch_env.python_code(code)
    # The default supervisor follows the store: the SQLite one, in the store's file.
    assert result.stdout.split() == ["sqlite", "memory", "sqlite", "sqlite"], result.stderr


def assert_start_names_the_broken_plugin(scratch_env: ScratchEnv, project: Path) -> None:
    """Issue 20: ``core start`` said nothing of a broken plugin; it starts, saying so in one line."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
    with subprocess.Popen(
        [str(scratch_env.python), "-m", "core", "start", "gateway"], cwd=project, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**clean, "PYTHONUNBUFFERED": "1", "CORE_GATEWAY_PORT": str(free_port())},
    ) as process:
        try:
            assert process.stdout is not None
            seen: list[str] = []
            for line in iter(process.stdout.readline, ""):
                seen.append(line)
                if line.startswith("core: plugin") or "http://" in line:
                    break  # the warning, or the ready banner that comes after it
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    warning = "core: plugin broken (core-plugin-broken) is not loaded: import failed:"
    assert seen[-1].startswith(warning), seen


def test_broken_plugin_is_listed_with_its_error_and_core_still_works(
    scratch_env: ScratchEnv, tmp_path: Path
) -> None:
    scratch_env.install(TEST_PLUGINS / "core-plugin-broken")
    scratch_env.install(TEST_PLUGINS / "core-plugin-example")
    try:
        rows = by_name(listing(scratch_env))
        assert rows["broken"]["status"] == "error"
        assert "RuntimeError: boom: this plugin cannot be imported" in str(rows["broken"]["error"])
        assert rows["broken"]["distribution"] == "core-plugin-broken"
        assert rows["example"]["status"] == "active"

        table = scratch_env.core("plugins", "list")
        assert table.returncode == 0
        assert "broken: import failed: RuntimeError: boom" in table.stderr

        strict = scratch_env.core("plugins", "list", env={"CORE_STRICT_PLUGINS": "1"})
        assert strict.returncode == 0, "listing is never strict: it is how you find the broken plugin"
        started = scratch_env.core("config", "show")
        assert started.returncode == 0
        assert_start_names_the_broken_plugin(scratch_env, tmp_path)
        strict_host = scratch_env.python_code(
            "from core.config import load_settings\nfrom core.plugins import PluginHost\nPluginHost(load_settings())",
            env={"CORE_STRICT_PLUGINS": "1"},
        )
        assert strict_host.returncode != 0
        assert "1 plugin(s) failed to load (strict mode)" in strict_host.stderr
        assert "broken (core-plugin-broken): import failed: RuntimeError: boom" in strict_host.stderr
    finally:
        scratch_env.uninstall("core-plugin-broken")
        scratch_env.uninstall("core-plugin-example")


def test_two_plugins_claiming_one_scheme_is_an_error_naming_both(scratch_env: ScratchEnv) -> None:
    scratch_env.install(TEST_PLUGINS / "core-plugin-example")
    scratch_env.install(TEST_PLUGINS / "core-plugin-clash")
    try:
        result = scratch_env.core("plugins", "list", "--json")
        assert result.returncode == 1
        rows = by_name(json.loads(result.stdout))
        error = str(rows["clash"]["error"])
        assert rows["clash"]["status"] == "error"
        assert "store URL scheme 'example' is claimed by two plugins" in error
        assert "core-plugin-example" in error and "core-plugin-clash" in error
        code = (
            "from core.config import load_settings\nfrom core.plugins import PluginHost\n"
            "PluginHost(load_settings()).registry.resolve('store', 'example://x')\n"
        )
        resolved = scratch_env.python_code(code)
        assert "hookspecs.PluginError" in resolved.stderr
        assert "plugin 'example' (core-plugin-example) and plugin 'clash' (core-plugin-clash)" in resolved.stderr
    finally:
        scratch_env.uninstall("core-plugin-clash")
        scratch_env.uninstall("core-plugin-example")


def test_switches_disable_and_allow_list(example: ScratchEnv) -> None:
    assert by_name(listing(example, CORE_DISABLE_PLUGINS="example"))["example"]["status"] == "disabled"
    assert by_name(listing(example, CORE_LOAD_PLUGINS=""))["example"]["status"] == "disabled"
    assert by_name(listing(example, CORE_LOAD_PLUGINS="example"))["example"]["status"] == "active"
    assert by_name(listing(example, CORE_LOAD_PLUGINS="other,names"))["example"]["status"] == "disabled"
    result = example.core("--no-plugins", "plugins", "list", "--json")
    assert by_name(json.loads(result.stdout))["example"]["status"] == "disabled"
    disabled = by_name(listing(example, CORE_DISABLE_PLUGINS="example"))["example"]
    assert disabled["provides"] == [] and disabled["hooks"] == []
