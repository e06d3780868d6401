"""The plugin's packaging and configuration: entry point, lazy SDK import, URL and options,
message encoding, and that no secret reaches a message."""

from __future__ import annotations

import subprocess
import sys

import pytest
from core.testing import PluginPackagingSuite, create_adapter
from hookspecs import ConfigError, Message, PipelineError

from core_plugin_aws._messages import BODY, PACKED, decode, encode
from core_plugin_aws._options import AwsOptions
from core_plugin_aws.pubsub import AwsPubSub


def test_url_is_served_by_the_installed_plugin() -> None:
    adapter = create_adapter("pubsub", "aws://?region=eu-west-1&endpoint_url=http://127.0.0.1:5000")
    assert isinstance(adapter, AwsPubSub)
    assert adapter.region == "eu-west-1"
    assert adapter.location == "region eu-west-1 at http://127.0.0.1:5000"


def test_options_come_from_the_table_and_the_url_query_wins() -> None:
    options = AwsOptions.parse(
        "aws://?region=us-east-2&prefix=shop&max_messages=64",
        {"prefix": "ignored", "max_deliveries": "3", "group_prefix": "staging-"},
        environ={},
    )
    assert (options.region, options.prefix, options.max_messages, options.max_deliveries) == (
        "us-east-2", "shop", 64, 3
    )
    assert options.topic_name("orders.created") == "shop-orders-created"
    assert options.topic_name(options.dead_letter_topic("orders.created")) == "shop-dead-orders-created"
    assert options.queue_name("orders", "billing").startswith("shop-staging-billing-orders-")


def test_region_and_endpoint_come_from_the_environment_unless_options_name_them() -> None:
    environ = {"AWS_DEFAULT_REGION": "ap-south-1", "AWS_ENDPOINT_URL": "http://localhost:4566"}
    options = AwsOptions.parse("aws://", {}, environ=environ)
    assert (options.region, options.endpoint_url) == ("ap-south-1", "http://localhost:4566")
    options = AwsOptions.parse("aws://?region=us-west-2&endpoint_url=http://127.0.0.1:9", {}, environ=environ)
    assert (options.region, options.endpoint_url) == ("us-west-2", "http://127.0.0.1:9")


def test_names_fit_sns_and_sqs_and_stay_unique() -> None:
    options = AwsOptions.parse("aws://?region=us-east-1", {}, environ={})
    assert options.topic_name("core.jobs") == "core-core-jobs"
    assert options.topic_name("a-b") != options.topic_name("a.b")
    assert options.queue_name("a.b", "c") != options.queue_name("a", "b.c")
    long = options.queue_name("t" * 300, "g" * 300)
    assert len(long) <= 80 and all(c.isalnum() or c in "-_" for c in long)
    assert len(options.topic_name(".".join(["x" * 60] * 6))) <= 256
    assert options.queue_name("orders", "1 group/x").startswith("core-1_group_x-orders-")


def test_topics_and_queues_tables_name_existing_resources() -> None:
    arn = "arn:aws:sns:us-east-1:123456789012:their-feed"
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/their-queue"
    options = AwsOptions.parse(
        f"aws://?region=us-east-1&topics.orders.external={arn}", {"queues": {"crm.updates": url}}, environ={}
    )
    assert options.topic_name("orders.external") == arn
    assert options.queues == {"crm.updates": url}


def test_messages_travel_as_text_when_they_can_and_come_back_the_same() -> None:
    cases = [
        Message(b'{"order": 1}', {"content-type": "application/json"}, key="k1"),
        Message(b"\x00binary \xff", {}),
        Message(b"", {"x": "1"}, key=""),
        Message(b"text", {"empty": "", "bad name!": "v", "aws.reserved": "r"}),
        Message(b"many", {f"a{i}": str(i) for i in range(12)}),
    ]
    for message in cases:
        body, attributes = encode(message)
        assert body and len(attributes) <= 10
        assert decode(body, attributes) == message
    assert encode(cases[0]) == ('{"order": 1}', {
        "Core-Key": {"DataType": "String", "StringValue": "k1"},
        "content-type": {"DataType": "String", "StringValue": "application/json"},
    })
    assert BODY in encode(cases[1])[1] and PACKED in encode(cases[4])[1]


def test_a_message_another_system_sent_is_read_as_it_is() -> None:
    got = decode("héllo", {"source": {"DataType": "String", "StringValue": "crm"},
                           "blob": {"DataType": "Binary", "BinaryValue": b"\x01"}})
    assert got == Message("héllo".encode(), {"source": "crm"}, None)


@pytest.mark.parametrize(("key", "value"), [
    ("max_messages", "0"), ("ack_deadline", "0"), ("prefix", "a.b"), ("endpoint_url", "localhost:5000"),
    ("region", "Mars"), ("max_deliveries", "1001"), ("wait_seconds", "21"), ("tls_cert", "/x"), ("nope", "1"),
    ("queues.orders", "not a queue!"), ("topics.orders", "arn:aws:sqs:nope"),
])
def test_a_bad_option_is_refused_with_what_is_allowed(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        AwsOptions.parse(f"aws://?region=us-east-1&{key}={value}", {}, environ={})
    assert key.partition(".")[0] in str(caught.value) and "hint:" in str(caught.value)


@pytest.mark.parametrize("url", ["aws://us-east-1", "aws://key:secret@", "aws:///path"])
def test_a_url_with_a_host_or_credentials_is_refused_without_showing_them(url: str) -> None:
    with pytest.raises(ConfigError, match="standard AWS chain") as caught:
        AwsOptions.parse(url, {}, environ={})
    assert "secret" not in str(caught.value)


def test_without_a_region_anywhere_the_error_says_where_to_put_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(ConfigError, match="region"):
        AwsPubSub("aws://")


def test_an_unknown_profile_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(ConfigError, match="profile"):
        AwsPubSub("aws://?region=us-east-1&profile=nobody")


def test_a_topic_sns_cannot_carry_is_refused() -> None:
    options = AwsOptions.parse("aws://?region=us-east-1", {}, environ={})
    with pytest.raises(PipelineError, match="cannot be a valid SNS/SQS name"):
        options.topic_name("orders *")


def test_no_secret_reaches_the_location_or_an_error() -> None:
    adapter = AwsPubSub("aws://?region=us-east-1&endpoint_url=http://user:pw@127.0.0.1:5000")
    assert "pw" not in adapter.location and "pw" not in repr(adapter)


class TestPackaging(PluginPackagingSuite):
    plugin_name, plugin_module = "aws", "core_plugin_aws.plugin"
    sdk_packages = ("boto3", "botocore", "s3transfer")
    bad_option = ("pubsub", "aws://?region=us-east-1", {"max_deliveries": "many"}, "max_deliveries")


def test_core_plugins_list_shows_the_scheme_without_importing_the_sdk() -> None:
    code = (
        "import runpy, sys\n"
        "sys.argv = ['core', 'plugins', 'list']\n"
        "try:\n    runpy.run_module('core', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('SDK:', sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 's3transfer')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert "pubsub:aws" in done.stdout
    assert "SDK: []" in done.stdout
