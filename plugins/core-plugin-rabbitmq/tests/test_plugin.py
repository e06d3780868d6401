"""The plugin's packaging and configuration: entry point, lazy SDK import, URL and options."""

from __future__ import annotations

import pytest
from core.testing import PluginPackagingSuite, create_adapter
from hookspecs import ConfigError, PipelineError

from core_plugin_rabbitmq._options import RabbitOptions
from core_plugin_rabbitmq.pubsub import RabbitPubSub


def test_url_is_served_by_the_installed_plugin() -> None:
    adapter = create_adapter("pubsub", "amqp://guest:guest@127.0.0.1:5672/")
    assert isinstance(adapter, RabbitPubSub)
    assert adapter.options.url == "amqp://guest:guest@127.0.0.1:5672/?heartbeat=30"


def test_options_come_from_the_table_and_the_url_query_wins() -> None:
    options = RabbitOptions.parse(
        "amqps://broker:5671/shop?exchange=shop&prefetch=64",
        {"exchange": "ignored", "max_deliveries": "3", "group_prefix": "staging-"},
        environ={},
    )
    assert (options.tls, options.exchange, options.prefetch, options.max_deliveries) == (True, "shop", 64, 3)
    assert options.url == "amqps://broker:5671/shop?heartbeat=30"
    assert options.queue("orders.created", "billing") == "shop:orders.created:staging-billing"


def test_credentials_come_from_the_url_or_the_environment() -> None:
    environ = {"CORE_RABBITMQ_USER": "env user", "CORE_RABBITMQ_PASSWORD": "p@ss"}
    from_env = RabbitOptions.parse("amqp://127.0.0.1/", {}, environ=environ)
    assert from_env.url == "amqp://env%20user:p%40ss@127.0.0.1/?heartbeat=30"
    assert from_env.safe_url() == "amqp://127.0.0.1/"
    from_url = RabbitOptions.parse("amqp://u:pw@127.0.0.1/", {}, environ=environ)
    assert from_url.url.startswith("amqp://u:pw@")


@pytest.mark.parametrize(("key", "value"), [("prefetch", "0"), ("exchange", ""), ("nope", "1")])
def test_a_bad_option_is_refused_with_what_is_allowed(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RabbitOptions.parse("amqp://127.0.0.1/", {key: value}, environ={})
    assert key in str(caught.value) and "hint:" in str(caught.value)


def test_a_topic_a_topic_exchange_would_misread_is_refused() -> None:
    options = RabbitOptions.parse("amqp://127.0.0.1/", {}, environ={})
    with pytest.raises(PipelineError, match="cannot be a RabbitMQ routing key"):
        options.routing_key("orders.#")


class TestPackaging(PluginPackagingSuite):
    plugin_name, plugin_module = "rabbitmq", "core_plugin_rabbitmq.plugin"
    sdk_packages = ("aio_pika", "aiormq", "pamqp")
    bad_option = ("pubsub", "amqp://127.0.0.1/", {"max_deliveries": "many"}, "max_deliveries")
