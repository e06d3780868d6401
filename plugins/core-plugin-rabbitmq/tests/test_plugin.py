"""The plugin's packaging and configuration: entry point, lazy SDK import, URL and options."""

from __future__ import annotations

import socket
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
from core.errors import ConfigError, PipelineError, PluginError
from core.testing import create_adapter
from hookspecs import Message, PubSubUnavailable

from core_plugin_rabbitmq._options import RabbitOptions
from core_plugin_rabbitmq.pubsub import RabbitPubSub


def test_entry_point_names_the_light_plugin_module() -> None:
    [entry] = [e for e in entry_points(group="core.plugins") if e.name == "rabbitmq"]
    assert entry.value == "core_plugin_rabbitmq.plugin"


def test_importing_the_plugin_module_does_not_import_aio_pika() -> None:
    code = (
        "import sys, core_plugin_rabbitmq.plugin\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('aio_pika', 'aiormq', 'pamqp')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


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


def test_a_bad_option_in_configuration_is_a_plugin_error_not_a_traceback() -> None:
    with pytest.raises(PluginError, match="max_deliveries"):
        create_adapter("pubsub", "amqp://127.0.0.1/", {"max_deliveries": "many"})


def test_a_topic_a_topic_exchange_would_misread_is_refused() -> None:
    options = RabbitOptions.parse("amqp://127.0.0.1/", {}, environ={})
    with pytest.raises(PipelineError, match="cannot be a RabbitMQ routing key"):
        options.routing_key("orders.#")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_open_raises_pubsub_unavailable_when_nothing_listens() -> None:
    adapter = RabbitPubSub(f"amqp://127.0.0.1:{_free_port()}/?connect_timeout=0.5&reconnect_wait=0.1", {})
    with pytest.raises(PubSubUnavailable, match="cannot be reached"):
        await adapter.open()
    with pytest.raises(PubSubUnavailable):
        await adapter.publish("orders", [Message(b"x")])
    await adapter.close()
    with pytest.raises(PubSubUnavailable, match="closed"):
        await adapter.publish("orders", [Message(b"x")])
