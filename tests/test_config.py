"""Configuration: file discovery, environment overrides, and errors that name file, key,
value and what is allowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.config import KEYS, load_settings
from core.errors import ConfigError


def test_no_config_gives_the_embedded_defaults(project: Path) -> None:
    settings = load_settings(environ={})
    assert settings.file is None
    assert settings["store"] == "sqlite:///.core/core.db"
    assert settings["pubsub"] == "memory://"
    assert settings["supervisor"] == "local://"
    assert settings["wanderer"] == "sqlite:///.core/core.db"
    assert settings.resolve_url(settings["store"]) == f"sqlite:///{project}/.core/core.db"
    assert all(settings.origin[k.name] == "default" for k in KEYS)


def test_core_toml_then_environment_then_flags(project: Path) -> None:
    (project / "core.toml").write_text(
        'store = "sqlite:///data/x.db"\n[gateway]\nport = 8000\nhost = "0.0.0.0"\n'
        '[options.crm]\ntoken = "abc"\n'
    )
    settings = load_settings(environ={"CORE_GATEWAY_PORT": "8100"}, overrides={"gateway.host": "127.0.0.2"})
    assert settings.file == project / "core.toml"
    assert settings["store"] == "sqlite:///data/x.db"
    assert settings["gateway.port"] == 8100 and settings.origin["gateway.port"] == "environment"
    assert settings["gateway.host"] == "127.0.0.2" and settings.origin["gateway.host"] == "command line"
    assert settings.section("crm") == {"token": "abc"}
    assert settings.resolve_url(settings["store"]) == f"sqlite:///{project}/data/x.db"


def test_only_sqlite_urls_are_resolved_against_the_project(project: Path) -> None:
    settings = load_settings(environ={})
    assert settings.resolve_url("sqlite:///data/x.db") == f"sqlite:///{project}/data/x.db"
    assert settings.resolve_url("sqlite+aiosqlite:///x.db") == f"sqlite+aiosqlite:///{project}/x.db"
    assert settings.resolve_url("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert settings.resolve_url("sqlite:///:memory:") == "sqlite:///:memory:"
    assert settings.resolve_url("postgresql:///pipeline") == "postgresql:///pipeline"


def test_pyproject_tool_core_table(project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.core]\npubsub = ""\n')
    settings = load_settings(environ={})
    assert settings.file == project / "pyproject.toml"
    assert settings["pubsub"] == ""


def test_pyproject_without_tool_core_is_ignored(project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_settings(environ={}).file is None


@pytest.mark.parametrize(
    ("text", "key", "allowed"),
    [
        ('store = "not a url"', "store", "a URL such as"),
        ("[gateway]\nport = 70000", "gateway.port", "a whole number from 0 to 65535"),
        ('[gateway]\nport = "x"', "gateway.port", "a whole number"),
        ('sotre = "sqlite:///x"', "sotre", "one of: app, store"),
        ("[plugins]\ndisable = 3", "plugins.disable", "a list of plugin names"),
        ("store = ", "(syntax)", "valid TOML"),
    ],
)
def test_bad_config_names_file_key_value_and_what_is_allowed(
    project: Path, text: str, key: str, allowed: str
) -> None:
    (project / "core.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={})
    message = str(caught.value)
    assert str(project / "core.toml") in message
    assert key in message
    assert allowed in message


def test_bad_environment_value_names_the_variable(project: Path) -> None:
    with pytest.raises(ConfigError, match="environment CORE_SCHEDULER_BATCH_SIZE: scheduler.batch_size = '0'"):
        load_settings(environ={"CORE_SCHEDULER_BATCH_SIZE": "0"})


def test_explicit_config_file_that_does_not_exist(project: Path) -> None:
    with pytest.raises(ConfigError, match="the path of an existing TOML file"):
        load_settings("nope.toml", environ={})


def test_cli_prints_config_errors_without_traceback(project: Path) -> None:
    (project / "core.toml").write_text("[gateway]\nport = -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "core", "config", "show"], capture_output=True, text=True, cwd=project
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "gateway.port = -1 is not valid" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_scheme_lists_installed_schemes_and_the_plugin_to_install(project: Path) -> None:
    from core.errors import PluginError
    from core.plugins import PluginHost

    url = "postgresql://app:s3cr3t@db/x?sslpassword=hunter2"
    host = PluginHost(load_settings(environ={"CORE_STORE": url, "CORE_LOAD_PLUGINS": ""}))
    with pytest.raises(PluginError) as caught:
        host.create("store")
    message = str(caught.value)
    assert "no installed plugin serves the scheme 'postgresql'" in message
    assert "'postgresql://app:***@db/x?sslpassword=***'" in message
    assert "s3cr3t" not in message and "hunter2" not in message
    assert "sqlite:// (sqlite)" in message
    assert "pip install --find-links dist/wheels core-plugin-postgres" in message
    assert "nox -s wheels" in message and "pip install ./plugins/core-plugin-postgres" in message


@pytest.mark.parametrize("scheme", ["mongodb", "redis"])
def test_an_unknown_scheme_invents_no_distribution_name(project: Path, scheme: str) -> None:
    """Issue 22, item 5: the hint names only plugins the project has, never core-plugin-<scheme>."""
    from core.errors import PluginError
    from core.plugins import PluginHost

    host = PluginHost(load_settings(environ={"CORE_STORE": f"{scheme}://db/x", "CORE_LOAD_PLUGINS": ""}))
    with pytest.raises(PluginError) as caught:
        host.create("store")
    message = str(caught.value)
    assert f"core-plugin-{scheme}" not in message and "pip install" not in message
    assert "core-plugin-postgres" in message and "core-plugin-aws" in message


def test_known_plugins_are_the_project_s_plugins() -> None:
    """Every distribution named in a hint is one of the project's (plugins/ or arriving: aws, azure)."""
    from core.plugins._registry import KNOWN_PLUGINS

    here = {p.name for p in (Path(__file__).parent.parent / "plugins").iterdir() if p.is_dir()}
    assert set(KNOWN_PLUGINS.values()) <= here | {"core-plugin-aws", "core-plugin-azure"}
    assert KNOWN_PLUGINS["aws"] == "core-plugin-aws" and KNOWN_PLUGINS["azure"] == "core-plugin-azure"


def test_commit_delay_is_a_store_option_not_a_gateway_key(project: Path) -> None:
    """The group-commit delay lives in the store's options table; a gateway key would do nothing."""
    (project / "core.toml").write_text("[gateway]\ncommit_delay_ms = 5")
    with pytest.raises(ConfigError, match="gateway.commit_delay_ms"):
        load_settings(environ={})


@pytest.mark.parametrize(("url", "shown"), [
    ("nats://u:p%40ss@h:4222?token=abc&tls=true", "nats://u:***@h:4222?token=***&tls=true"),
    ("aws://?region=eu-west-1&secret_access_key=zz", "aws://?region=eu-west-1&secret_access_key=***"),
    ("sqlite:///var/core.db", "sqlite:///var/core.db"),
    ("amqp://guest@h/?heartbeat", "amqp://guest@h/?heartbeat"),
])
def test_a_url_in_a_message_never_carries_a_secret(url: str, shown: str) -> None:
    from hookspecs import redacted_url

    assert redacted_url(url) == shown


def test_an_adapter_that_fails_to_build_is_named_without_its_password(project: Path) -> None:
    from core.errors import PluginError
    from core.plugins import PluginHost

    (project / "failing_store.py").write_text(
        "from hookspecs import AdapterRegistration, hookimpl\n"
        "def broken(url, options):\n"
        "    raise RuntimeError('cannot reach it')\n"
        "@hookimpl\n"
        "def core_register_stores():\n"
        "    return [AdapterRegistration(name='broken', schemes=('broken',), factory=broken)]\n"
    )
    host = PluginHost(load_settings(environ={"CORE_STORE": "broken://user:pw0rd@db/x", "CORE_LOAD_PLUGINS": "",
                                             "CORE_APP": "failing_store.py"}))
    with pytest.raises(PluginError) as caught:
        host.create("store")
    assert "could not be created for 'broken://user:***@db/x': RuntimeError: cannot reach it" in str(caught.value)
