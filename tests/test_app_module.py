"""A user's own module registers hookimpls, like a conftest.py (config key ``app``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import CoreError
from core.plugins import PluginHost

GUARD = {"CORE_LOAD_PLUGINS": ""}  # the test guard: no installed plugins

APP = '''
from hookspecs import AdapterRegistration, hookimpl

@hookimpl
def core_register_pubsubs():
    return [AdapterRegistration(name="mine", schemes=("mine",), factory=lambda url, options: ("built", url))]
'''


def test_app_file_registers_hookimpls(project: Path) -> None:
    (project / "pipeline.py").write_text(APP)
    (project / "core.toml").write_text('app = "pipeline.py"\npubsub = "mine://x"\n')
    host = PluginHost(load_settings(environ=GUARD))
    assert host.records["app"].hooks == ["core_register_pubsubs"]
    assert host.records["app"].provides == ["pubsub:mine"]
    assert host.create("pubsub") == ("built", "mine://x")


def test_app_module_by_dotted_name(project: Path) -> None:
    (project / "shop").mkdir()
    (project / "shop" / "__init__.py").write_text("")
    (project / "shop" / "pipeline_mod.py").write_text(APP)
    host = PluginHost(load_settings(environ=GUARD, overrides={"app": "shop.pipeline_mod"}))
    assert host.records["app"].provides == ["pubsub:mine"]


def test_missing_app_is_a_clear_error(project: Path) -> None:
    with pytest.raises(CoreError, match="no module named 'nowhere'"):
        PluginHost(load_settings(environ=GUARD, overrides={"app": "nowhere.pipeline"}))
    with pytest.raises(CoreError, match="no such file"):
        PluginHost(load_settings(environ=GUARD, overrides={"app": "missing.py"}))


def test_app_that_raises_shows_where(project: Path) -> None:
    (project / "bad.py").write_text("x = 1\nraise ValueError('typo in my pipeline')\n")
    with pytest.raises(CoreError) as caught:
        PluginHost(load_settings(environ=GUARD, overrides={"app": "bad.py"}))
    assert "bad.py" in str(caught.value) and "ValueError: typo in my pipeline" in str(caught.value)


def test_app_with_unknown_hook_is_reported(project: Path) -> None:
    (project / "typo.py").write_text(
        "from hookspecs import hookimpl\n\n@hookimpl\ndef core_register_store():\n    return []\n"
    )
    host = PluginHost(load_settings(environ=GUARD, overrides={"app": "typo.py"}))
    assert host.records["app"].status == "error"
    assert "unknown hooks ['core_register_store']" in str(host.records["app"].error)
