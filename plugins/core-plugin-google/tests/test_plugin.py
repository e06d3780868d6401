"""The plugin's packaging and configuration: entry point, lazy SDK import, URL and options."""

from __future__ import annotations

import subprocess
import sys

import pytest
from core.testing import PluginPackagingSuite, create_adapter
from hookspecs import ConfigError, PipelineError

from core_plugin_google._options import GoogleOptions
from core_plugin_google._subscription import escaped, unescaped
from core_plugin_google.pubsub import GooglePubSub


def test_url_is_served_by_the_installed_plugin() -> None:
    adapter = create_adapter("pubsub", "google://my-project?emulator_host=127.0.0.1:8085")
    assert isinstance(adapter, GooglePubSub)
    assert adapter.options.project == "my-project"
    assert "emulator at 127.0.0.1:8085" in adapter.location


def test_options_come_from_the_table_and_the_url_query_wins() -> None:
    options = GoogleOptions.parse(
        "google://shop-prod?prefix=shop.eu&max_messages=64",
        {"prefix": "ignored", "max_deliveries": "3", "group_prefix": "staging-"},
        environ={},
    )
    assert (options.prefix, options.max_messages, options.max_deliveries, options.emulator_host) == (
        "shop.eu", 64, 3, ""
    )
    assert options.topic_path("orders.created") == "projects/shop-prod/topics/shop.eu.orders.created"
    assert options.topic_id(options.dead_letter_topic("orders.created")) == "shop.eu.dead.orders.created"
    assert options.subscription_id("orders", "billing").startswith("staging-billing__shop.eu.orders_")


def test_the_emulator_comes_from_the_environment_unless_an_option_names_one() -> None:
    environ = {"PUBSUB_EMULATOR_HOST": "localhost:8681"}
    assert GoogleOptions.parse("google://p1", {}, environ=environ).emulator_host == "localhost:8681"
    assert GoogleOptions.parse("google://p1?emulator_host=127.0.0.1:9", {}, environ=environ).emulator_host == (
        "127.0.0.1:9"
    )


def test_without_a_prefix_topics_keep_their_own_name() -> None:
    options = GoogleOptions.parse("google://p1", {"prefix": ""}, environ={})
    assert options.topic_id("orders.external") == "orders.external"
    with pytest.raises(PipelineError, match="cannot be a Pub/Sub topic ID"):
        options.topic_id("9lives")


def test_group_and_topic_pairs_get_distinct_subscriptions_fit_for_pubsub() -> None:
    options = GoogleOptions.parse("google://p1", {}, environ={})
    assert options.subscription_id("a.b", "c") != options.subscription_id("a", "b.c")
    assert options.subscription_id("orders", "1 group/x").startswith("g-1_group_x__")


def test_attributes_named_like_the_sdks_arguments_travel_escaped() -> None:
    attributes = {"timeout": "3", "data": "d", "kind": "k", "Core-Attribute-x": "y"}
    assert set(escaped(attributes)) == {"Core-Attribute-timeout", "Core-Attribute-data", "kind",
                                        "Core-Attribute-Core-Attribute-x"}
    assert unescaped(escaped(attributes)) == attributes


@pytest.mark.parametrize(("key", "value"), [
    ("max_messages", "0"), ("ack_deadline", "5"), ("prefix", "goog.x"), ("emulator_host", "nohost"),
    ("max_deliveries", "101"), ("tls_ca", "/x"), ("nope", "1"),
])
def test_a_bad_option_is_refused_with_what_is_allowed(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GoogleOptions.parse(f"google://p1?{key}={value}", {}, environ={})
    assert key in str(caught.value) and "hint:" in str(caught.value)


@pytest.mark.parametrize("url", ["google://", "google://user@p1", "google://p1/path"])
def test_a_url_without_just_a_project_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="PROJECT_ID"):
        GoogleOptions.parse(url, {}, environ={})


def test_a_topic_pubsub_cannot_carry_is_refused() -> None:
    options = GoogleOptions.parse("google://p1", {}, environ={})
    with pytest.raises(PipelineError, match="cannot be a Pub/Sub topic ID"):
        options.topic_path("orders *")


class TestPackaging(PluginPackagingSuite):
    plugin_name, plugin_module = "google", "core_plugin_google.plugin"
    sdk_packages = ("google", "grpc")
    bad_option = ("pubsub", "google://my-project", {"max_deliveries": "many"}, "max_deliveries")


def test_core_plugins_list_shows_the_scheme_without_importing_the_sdk() -> None:
    code = (
        "import runpy, sys\n"
        "sys.argv = ['core', 'plugins', 'list']\n"
        "try:\n    runpy.run_module('core', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('SDK:', sorted(m for m in sys.modules if m.split('.')[0] in ('google', 'grpc')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert "pubsub:google" in done.stdout
    assert "SDK: []" in done.stdout
