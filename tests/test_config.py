"""Configuration: file discovery, environment overrides, and errors that name file, key,
value and what is allowed."""

from __future__ import annotations

import asyncio
import json
import os
import socket
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
    assert settings["supervisor"] == "store"
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


def test_every_problem_is_reported_at_once_with_the_nearest_key(project: Path) -> None:
    """Issue 22, item 8: not only the first bad key, and a "did you mean" for a misspelled one."""
    from core.config import ConfigProblems

    (project / "core.toml").write_text('stor = "x"\n[gateway]\nprot = 1\nport = -1\n')
    with pytest.raises(ConfigProblems) as caught:
        load_settings(environ={"CORE_SCHEDULER_BATCH_SIZE": "0"})
    message = str(caught.value)
    assert message.startswith("4 problems in the configuration:")
    assert "stor = 'x' is not valid" in message and "did you mean 'store'?" in message
    assert "gateway.prot = 1" in message and "did you mean 'gateway.port'?" in message
    assert "gateway.port = -1" in message and "CORE_SCHEDULER_BATCH_SIZE" in message


def test_a_rule_between_keys_is_checked_with_the_configuration(project: Path) -> None:
    (project / "core.toml").write_text("[scheduler]\nload_timeout = 400\n")
    with pytest.raises(ConfigError, match=r"scheduler.load_timeout = 400.0 is not valid\n  hint: below scheduler"):
        load_settings(environ={})


def _start(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORE_")} | {"CORE_LOAD_PLUGINS": ""}
    env["CORE_ADMIN_PORT"] = "0"
    return subprocess.run([sys.executable, "-m", "core", "start", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60)


def test_start_reports_config_rules_and_a_port_in_use_before_anything_starts(project: Path) -> None:
    (project / "core.toml").write_text("[scheduler]\nload_timeout = 400\n")
    result = _start(project, "--port", "0")
    assert result.returncode == 2 and "scheduler.load_timeout = 400.0 is not valid" in result.stderr
    assert "listening" not in result.stdout and "starting" not in result.stderr
    (project / "core.toml").write_text("")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = _start(project, "--port", str(taken.getsockname()[1]))
    assert result.returncode == 2 and "cannot listen on 127.0.0.1" in result.stderr
    assert "listening" not in result.stdout and "scheduler running" not in result.stderr
    assert not (project / ".core").exists()  # nothing was opened


def test_adapter_option_problems_are_reported_together_without_a_class_name(project: Path) -> None:
    from core.errors import PluginError
    from core.runtime import Runtime

    (project / "core.toml").write_text('store = "sqlite://data.db"\n[options.memory]\nmax_pendin = 3\n')
    with pytest.raises(PluginError) as caught:
        asyncio.run(Runtime.open(load_settings(environ={"CORE_LOAD_PLUGINS": ""}), services=["gateway"]))
    message = str(caught.value)
    assert message.startswith("3 adapters cannot be built")
    assert "ConfigError" not in message and "the SQLite URL: url = 'sqlite://data.db'" in message
    assert "no option 'max_pendin'" in message and "did you mean 'max_pending'?" in message


SECRET_APP = '''
from hookspecs import AdapterRegistration, Option, hookimpl

OPTIONS = {"token": Option(str, "", "a string", secret=True), "depth": Option(int, 1, "a number")}

@hookimpl
def core_register_pubsubs():
    return [AdapterRegistration(name="vault", schemes=("vault",), factory=lambda url, options: None,
                                options=OPTIONS)]
'''


def test_config_show_lists_options_tables_without_secrets(project: Path) -> None:
    from click.testing import CliRunner

    from core.cli import main

    (project / "app.py").write_text(SECRET_APP)
    (project / "core.toml").write_text(
        'app = "app.py"\nstore = "sqlite:///x.db"\npubsub = "vault://u:hunter2@h/?password=zz"\n'
        '[options.vault]\ntoken = "s3cr3t"\ndepth = 2\n'
        '[options.crm]\napi_token = "t0k"\nurl = "https://u:pw99@h/x?key=kk1"\nretries = 3\n'
    )
    result = CliRunner().invoke(main, ["config", "show"], env={"CORE_LOAD_PLUGINS": ""})
    out = result.stdout
    assert result.exit_code == 0, result.stderr
    assert "options.vault.token" in out and "options.vault.depth" in out and "options.crm.retries" in out
    assert "'https://u:***@h/x?key=***'" in out and "'vault://u:***@h/?password=***'" in out
    for secret in ("s3cr3t", "t0k", "pw99", "kk1", "hunter2", "zz"):
        assert secret not in out
    shown = json.loads(CliRunner().invoke(main, ["config", "show", "--json"], env={"CORE_LOAD_PLUGINS": ""}).stdout)
    assert shown["options"]["options.vault.token"] == "***" and shown["options"]["options.vault.depth"] == 2


def test_an_options_error_of_a_destination_shows_no_class_name(tmp_path: Path) -> None:
    """Issue 22, item 8: a ConfigError raised by a destination's init reads as a sentence."""
    from core.plugins._collect import describe
    from core.scheduler.then import error_text

    error = ConfigError("[options.crm]", "api_url", 3, "a URL")
    for text in (describe(error), error_text(error)):
        assert text.startswith("[options.crm]: api_url = 3 is not valid") and "ConfigError" not in text


UNREACHABLE_APP = '''
from hookspecs import AdapterRegistration, hookimpl

class Unreachable:
    async def open(self):
        raise ConnectionRefusedError("connection refused")
    async def close(self):
        pass

@hookimpl
def core_register_stores():
    return [AdapterRegistration(name="far", schemes=("far",), factory=lambda url, options: Unreachable())]
'''


@pytest.mark.parametrize("command", [["start", "gateway"], ["jobs", "list"]])
def test_a_store_that_cannot_be_opened_is_named_without_its_password(project: Path, command: list[str]) -> None:
    """Issue 20: the error shown when the store is unreachable at start printed its URL as set."""
    from click.testing import CliRunner

    from core.cli import main

    (project / "app.py").write_text(UNREACHABLE_APP)
    (project / "core.toml").write_text('app = "app.py"\nstore = "far://app:pa55word@db:5432/x?token=t0k"\n')
    result = CliRunner().invoke(main, command, env={"CORE_LOAD_PLUGINS": ""})
    assert result.exit_code != 0
    assert "could not open the store at 'far://app:***@db:5432/x?token=***'" in result.stderr
    assert "pa55word" not in result.output + result.stderr and "t0k" not in result.output + result.stderr
