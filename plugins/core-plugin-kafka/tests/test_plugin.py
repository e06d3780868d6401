"""The plugin's packaging and configuration: entry point, lazy SDK import, URL and options."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from core.testing import PluginPackagingSuite, create_adapter
from hookspecs import CoreError

from core_plugin_kafka._options import KafkaOptions
from core_plugin_kafka.pubsub import KafkaPubSub


def test_core_plugins_list_shows_the_kafka_adapter() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "core", "plugins", "list", "--json"],
        check=True, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    )
    [plugin] = [p for p in json.loads(listed.stdout) if p["name"] == "kafka"]
    assert (plugin["status"], plugin["distribution"]) == ("active", "core-plugin-kafka")
    assert plugin["provides"] == ["pubsub:kafka"]


@pytest.mark.parametrize("scheme", ["kafka", "kafka+ssl"])
def test_urls_are_served_by_the_installed_plugin(scheme: str) -> None:
    adapter = create_adapter("pubsub", f"{scheme}://b1:9092,b2:9092")
    assert isinstance(adapter, KafkaPubSub)
    assert adapter.options.bootstrap == "b1:9092,b2:9092"


def test_options_come_from_the_table_and_the_url_query_wins() -> None:
    options = KafkaOptions.parse(
        "kafka://b1:9092?topic_prefix=shop.eu.&max_redeliveries=3&config.fetch.wait.max.ms=10",
        {"topic_prefix": "ignored.", "group_prefix": "staging-", "config": {"linger.ms": 20}},
        environ={},
    )
    assert (options.topic_prefix, options.group_prefix, options.max_redeliveries) == ("shop.eu.", "staging-", 3)
    assert options.topic("core.jobs") == "shop.eu.core.jobs"
    assert options.group("schedulers") == "staging-schedulers"
    assert options.client == {"security.protocol": "PLAINTEXT", "bootstrap.servers": "b1:9092", "linger.ms": 20,
                              "fetch.wait.max.ms": "10"}


def test_sasl_credentials_come_from_the_environment_or_the_url() -> None:
    environ = {"CORE_KAFKA_SASL_USERNAME": "env-user", "CORE_KAFKA_SASL_PASSWORD": "env-pw",
               "CORE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "CORE_KAFKA_SSL_CA_LOCATION": "/ca.pem"}
    from_env = KafkaOptions.parse("kafka+sasl://b1:9093", {}, environ=environ).client
    assert from_env["security.protocol"] == "SASL_SSL"
    assert (from_env["sasl.username"], from_env["sasl.password"]) == ("env-user", "env-pw")
    assert (from_env["sasl.mechanism"], from_env["ssl.ca.location"]) == ("SCRAM-SHA-512", "/ca.pem")
    from_url = KafkaOptions.parse("kafka+sasl://u%40x:p%3Aw@b1:9093?tls=false", {}, environ={}).client
    assert from_url["security.protocol"] == "SASL_PLAINTEXT"
    assert (from_url["sasl.username"], from_url["sasl.password"], from_url["sasl.mechanism"]) == ("u@x", "p:w", "PLAIN")


def test_tls_takes_certificates_but_no_sasl_settings() -> None:
    environ = {"CORE_KAFKA_SSL_CA_LOCATION": "/ca.pem", "CORE_KAFKA_SASL_USERNAME": "unused"}
    client = KafkaOptions.parse("kafka+ssl://b1:9093", {}, environ=environ).client
    assert client == {"security.protocol": "SSL", "ssl.ca.location": "/ca.pem", "bootstrap.servers": "b1:9093"}


def test_sasl_without_credentials_says_which_variables_to_set() -> None:
    with pytest.raises(CoreError, match="CORE_KAFKA_SASL_USERNAME"):
        KafkaOptions.parse("kafka+sasl://b1:9093", {}, environ={})


@pytest.mark.parametrize(
    ("query", "named"),
    [("max_redeliveries=-1", "max_redeliveries"), ("offset_reset=middle", "offset_reset"),
     ("topic_prefix=a b", "topic_prefix"), ("nope=1", "nope"), ("tls=maybe", "tls")],
)
def test_a_bad_option_is_refused_with_what_is_allowed(query: str, named: str) -> None:
    with pytest.raises(CoreError) as caught:
        KafkaOptions.parse(f"kafka://b1:9092?{query}", {}, environ={})
    assert named in str(caught.value) and "hint:" in str(caught.value)


def test_a_url_without_brokers_is_refused() -> None:
    with pytest.raises(CoreError, match="names no broker"):
        KafkaOptions.parse("kafka://", {}, environ={})


def test_a_topic_kafka_cannot_carry_is_refused() -> None:
    options = KafkaOptions.parse("kafka://b1:9092", {}, environ={})
    with pytest.raises(CoreError, match="not a valid Kafka name"):
        options.topic("orders/created")


def test_errors_never_show_the_password() -> None:
    with pytest.raises(CoreError) as caught:
        KafkaOptions.parse("kafka+sasl://user:s3cret@b1:9093?nope=1", {}, environ={})
    assert "s3cret" not in str(caught.value)


class TestPackaging(PluginPackagingSuite):
    plugin_name, plugin_module, sdk_packages = "kafka", "core_plugin_kafka.plugin", ("confluent_kafka",)
    bad_option = ("pubsub", "kafka://b1:9092", {"publish_timeout_ms": "soon"}, "publish_timeout_ms")
