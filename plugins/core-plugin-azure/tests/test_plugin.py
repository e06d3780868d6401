"""The plugin's packaging and configuration: entry point, lazy SDK import, URL, credentials
from the environment only, options, and no secret in a message or a log line."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from core.testing import PluginPackagingSuite, create_adapter
from hookspecs import ConfigError, Message, PipelineError, PubSubUnavailable, redacted_url

from core_plugin_azure._options import AzureOptions
from core_plugin_azure.pubsub import AzurePubSub

KEY = "bm90LWEtcmVhbC1rZXktYnV0LWEtc2VjcmV0LWFsbC10aGUtc2FtZQ=="
CONNECTION = f"Endpoint=sb://shop.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey={KEY}"


def test_url_is_served_by_the_installed_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORE_AZURE_SERVICEBUS", CONNECTION)
    adapter = create_adapter("pubsub", "azure://shop.servicebus.windows.net")
    assert isinstance(adapter, AzurePubSub)
    assert adapter.options.namespace == "shop.servicebus.windows.net"
    assert adapter.options.host_port == ("shop.servicebus.windows.net", 5671)
    assert KEY not in repr(adapter) + repr(adapter.options) + adapter.location


def test_the_namespace_comes_from_the_connection_string_of_the_named_variable() -> None:
    environ = {"MY_SB": "Endpoint=sb://127.0.0.1:5673;SharedAccessKeyName=k;SharedAccessKey=x;"
                        "UseDevelopmentEmulator=true"}
    options = AzureOptions.parse("azure://?connection_string_env=MY_SB", {}, environ=environ)
    assert (options.namespace, options.emulator, options.host_port) == ("127.0.0.1:5673", True, ("127.0.0.1", 5673))
    assert "plain AMQP" in options.location


def test_without_a_connection_string_the_namespace_is_needed_for_azure_identity() -> None:
    options = AzureOptions.parse("azure://shop.servicebus.windows.net", {}, environ={})
    assert (options.connection_string, options.emulator) == ("", False)
    with pytest.raises(ConfigError, match="CORE_AZURE_SERVICEBUS"):
        AzureOptions.parse("azure://", {}, environ={})
    with pytest.raises(ConfigError, match="credential"):
        AzureOptions.parse("azure://shop.servicebus.windows.net?credential=connection_string", {}, environ={})


def test_identity_ignores_a_connection_string() -> None:
    options = AzureOptions.parse("azure://shop.servicebus.windows.net?credential=identity", {},
                                 environ={"CORE_AZURE_SERVICEBUS": CONNECTION})
    assert options.connection_string == ""


def test_a_connection_string_for_another_namespace_is_refused() -> None:
    with pytest.raises(ConfigError, match="namespace") as caught:
        AzureOptions.parse("azure://other.servicebus.windows.net", {}, environ={"CORE_AZURE_SERVICEBUS": CONNECTION})
    assert KEY not in str(caught.value)


def test_a_bad_connection_string_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        AzureOptions.parse("azure://", {}, environ={"CORE_AZURE_SERVICEBUS": f"SharedAccessKey={KEY}"})
    assert KEY not in str(caught.value)


def test_options_come_from_the_table_and_the_url_query_wins() -> None:
    options = AzureOptions.parse(
        "azure://shop.servicebus.windows.net?prefix=shop.eu&max_messages=64",
        {"prefix": "ignored", "max_deliveries": "3", "group_prefix": "staging-"}, environ={},
    )
    assert (options.prefix, options.max_messages, options.max_deliveries) == ("shop.eu", 64, 3)
    assert options.topic_name("orders.created") == "shop.eu.orders.created"
    assert options.topic_name(options.dead_letter_topic("orders.created")) == "shop.eu.dead.orders.created"
    assert options.subscription_name("billing") == "staging-billing"


def test_group_names_service_bus_cannot_take_get_readable_unique_subscription_names() -> None:
    options = AzureOptions.parse("azure://ns.servicebus.windows.net", {}, environ={})
    long = options.subscription_name("g" * 80)
    assert len(long) <= 50 and long != options.subscription_name("g" * 81)
    odd = options.subscription_name("1 group/x")
    assert odd.startswith("1_group_x-") and len(odd) <= 50


@pytest.mark.parametrize(("key", "value"), [
    ("max_messages", "0"), ("receive_batch", "0"), ("prefix", "-x"), ("connection_string_env", "1bad"),
    ("credential", "password"), ("manage_entities", "maybe"), ("tls_cert", "/x"), ("nope", "1"),
    ("max_lock_renewal", "-1"),
])
def test_a_bad_option_is_refused_with_what_is_allowed(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        AzureOptions.parse(f"azure://ns.servicebus.windows.net?{key}={value}", {}, environ={})
    assert key in str(caught.value) and "hint:" in str(caught.value)


@pytest.mark.parametrize("url", ["azure://user:pw@ns", "azure://ns/path"])
def test_credentials_or_a_path_in_the_url_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="NAMESPACE"):
        AzureOptions.parse(url, {}, environ={})


def test_a_topic_service_bus_cannot_carry_is_refused() -> None:
    options = AzureOptions.parse("azure://ns.servicebus.windows.net", {}, environ={})
    with pytest.raises(PipelineError, match="cannot be a Service Bus topic name"):
        options.topic_name("orders/*")


def test_redacted_url_hides_a_key_given_in_the_query_by_mistake() -> None:
    assert KEY not in redacted_url(f"azure://ns?shared_access_key={KEY}")


async def test_no_secret_reaches_a_log_line_or_an_error(caplog: pytest.LogCaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from core.testing import free_port

    monkeypatch.setenv("CORE_AZURE_SERVICEBUS", f"Endpoint=sb://127.0.0.1:{free_port()};SharedAccessKeyName=k;"
                       f"SharedAccessKey={KEY};UseDevelopmentEmulator=true")
    caplog.set_level(logging.DEBUG)
    adapter = create_adapter("pubsub", "azure://?connect_timeout=0.2&reconnect_wait=0.05")
    shown = []
    for _ in range(2):
        with pytest.raises(PubSubUnavailable) as caught:
            await adapter.open()
            await adapter.publish("orders", [Message(b"x")])
        shown.append(str(caught.value))
    await adapter.close()
    assert KEY not in "".join(shown) + caplog.text + repr(adapter)


class TestPackaging(PluginPackagingSuite):
    plugin_name, plugin_module = "azure", "core_plugin_azure.plugin"
    sdk_packages = ("azure", "proton", "aiohttp")
    bad_option = ("pubsub", "azure://ns.servicebus.windows.net", {"max_deliveries": "many"}, "max_deliveries")


def test_core_plugins_list_shows_the_scheme_without_importing_the_sdk() -> None:
    code = (
        "import runpy, sys\n"
        "sys.argv = ['core', 'plugins', 'list']\n"
        "try:\n    runpy.run_module('core', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('SDK:', sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'proton', 'aiohttp')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert "pubsub:azure" in done.stdout
    assert "SDK: []" in done.stdout
