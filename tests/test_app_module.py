"""A user's own module registers hookimpls, like a conftest.py (config key ``app``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import CoreError
from core.plugins import PluginHost

GUARD = {"CORE_LOAD_PLUGINS": "", "CORE_ADMIN_PORT": "0"}  # the test guard: no installed plugins

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


def test_app_with_unknown_hook_is_refused(project: Path) -> None:
    (project / "typo.py").write_text(
        "from hookspecs import hookimpl\n\n@hookimpl\ndef core_register_store():\n    return []\n"
    )
    with pytest.raises(CoreError, match="'core_register_store'.* is not a hook: did you mean 'core_register_stores'"):
        PluginHost(load_settings(environ=GUARD, overrides={"app": "typo.py"}))


def test_start_refuses_an_app_with_a_misspelled_hook_and_suggests_the_name(project: Path) -> None:
    """Issue 22, item 1: a typo in a hookimpl name stops the host, naming the file, line and hook."""
    (project / "typo.py").write_text(
        "from hookspecs import hookimpl\n\n\n@hookimpl\ndef core_register_source():\n    return []\n"
    )
    with pytest.raises(CoreError) as caught:
        PluginHost(load_settings(environ=GUARD, overrides={"app": "typo.py"}))
    message = str(caught.value)
    assert "did you mean 'core_register_sources'?" in message
    assert f"{project / 'typo.py'}:4" in message


def test_core_start_refuses_the_misspelled_app_before_listening(project: Path) -> None:
    from click.testing import CliRunner

    from core.cli import main

    (project / "typo.py").write_text(
        "from hookspecs import hookimpl\n\n@hookimpl\ndef core_register_source():\n    pass\n"
    )
    result = CliRunner().invoke(main, ["start", "--app", "typo.py", "--port", "0"], env=GUARD)
    assert result.exit_code == 2 and "did you mean 'core_register_sources'" in result.stderr
    assert "listening" not in result.stdout and "Traceback" not in result.stderr


def test_strict_mode_refuses_a_plugin_with_a_misspelled_hook(project: Path) -> None:
    import types

    host = PluginHost(load_settings(environ=GUARD))
    plugin = types.ModuleType("typo_plugin")
    exec("from hookspecs import hookimpl\n@hookimpl\ndef core_register_flow():\n    return []\n", plugin.__dict__)
    from core.plugins import PluginRecord

    record = PluginRecord(name="typo", module="typo_plugin", distribution="core-plugin-typo", version="1")
    host._register(plugin, record)
    assert record.status == "error" and "did you mean 'core_register_flows'?" in str(record.error)
    with pytest.raises(CoreError, match="did you mean 'core_register_flows'"):
        host.raise_for_errors()


def test_an_exception_inside_a_hook_names_the_user_s_file_and_line(project: Path) -> None:
    from core.pipeline import Pipeline

    (project / "boom.py").write_text(
        "from hookspecs import hookimpl\n\n@hookimpl\ndef core_register_sources():\n    return [1 / 0]\n"
    )
    host = PluginHost(load_settings(environ=GUARD, overrides={"app": "boom.py"}))
    with pytest.raises(CoreError) as caught:
        Pipeline.from_host(host)
    message = str(caught.value)
    assert f'File "{project / "boom.py"}", line 5, in core_register_sources' in message
    assert "ZeroDivisionError" in message and "pluggy" not in message and "core/pipeline.py" not in message


def test_a_syntax_error_in_the_app_shows_the_user_s_line_not_core_s_frames(project: Path) -> None:
    (project / "broken.py").write_text("x = 1\ndef f(:\n    pass\n")
    with pytest.raises(CoreError) as caught:
        PluginHost(load_settings(environ=GUARD, overrides={"app": "broken.py"}))
    message = str(caught.value)
    assert f'File "{project / "broken.py"}", line 2' in message and "SyntaxError" in message
    assert "core/plugins" not in message and "importlib" not in message
