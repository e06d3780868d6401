"""The plugin's packaging and configuration: entry point, lazy SDK import, URL and options."""

from __future__ import annotations

import pytest
from core.testing import PluginPackagingSuite, create_adapter
from hookspecs import ConfigError, PipelineError

from core_plugin_nats._options import NatsOptions
from core_plugin_nats.pubsub import NatsPubSub


def test_url_is_served_by_the_installed_plugin() -> None:
    adapter = create_adapter("pubsub", "nats://127.0.0.1:4222")
    assert isinstance(adapter, NatsPubSub)
    assert adapter.options.servers == ("nats://127.0.0.1:4222",)


def test_options_come_from_the_table_and_the_url_query_wins() -> None:
    options = NatsOptions.parse(
        "nats+tls://h1:4222,h2:4222?prefix=shop.eu&batch=64",
        {"prefix": "ignored", "max_deliveries": "3", "group_prefix": "staging-"},
        environ={},
    )
    assert options.servers == ("tls://h1:4222", "tls://h2:4222")
    assert (options.prefix, options.stream, options.batch, options.max_deliveries) == ("shop.eu", "SHOP_EU", 64, 3)
    assert options.subject("orders.created") == "shop.eu.orders.created"
    assert options.dead_letter_subject("orders.created") == "shop.eu.dead.orders.created"
    assert options.durable("orders", "billing").startswith("staging-billing__orders_")


def test_credentials_come_from_the_url_or_the_environment() -> None:
    environ = {"CORE_NATS_USER": "env-user", "CORE_NATS_PASSWORD": "env-pw", "CORE_NATS_TOKEN": "tok"}
    from_env = NatsOptions.parse("nats://127.0.0.1:4222", {}, environ=environ)
    assert (from_env.user, from_env.password, from_env.token) == ("env-user", "env-pw", "tok")
    from_url = NatsOptions.parse("nats://u%40x:p%3Aw@127.0.0.1:4222", {}, environ=environ)
    assert (from_url.user, from_url.password) == ("u@x", "p:w")


def test_group_and_topic_pairs_get_distinct_consumers() -> None:
    options = NatsOptions.parse("nats://127.0.0.1", {}, environ={})
    assert options.durable("a.b", "c") != options.durable("a", "b.c")


@pytest.mark.parametrize(("key", "value"), [("batch", "0"), ("retention", "work"), ("prefix", "a b"), ("nope", "1")])
def test_a_bad_option_is_refused_with_what_is_allowed(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        NatsOptions.parse(f"nats://127.0.0.1?{key}={value}", {}, environ={})
    assert key in str(caught.value) and "hint:" in str(caught.value)


def test_a_topic_nats_cannot_carry_is_refused() -> None:
    options = NatsOptions.parse("nats://127.0.0.1", {}, environ={})
    with pytest.raises(PipelineError, match="cannot be a NATS subject"):
        options.subject("orders *")


class TestPackaging(PluginPackagingSuite):
    plugin_name, plugin_module, sdk_packages = "nats", "core_plugin_nats.plugin", ("nats",)
    bad_option = ("pubsub", "nats://127.0.0.1:4222", {"max_deliveries": "many"}, "max_deliveries")
